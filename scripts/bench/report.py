"""Assembles make bench's measurements into one table."""
import json
import os
import sys

out = sys.argv[1]


py = json.load(open(os.path.join(out, "wechatpy.json")))
js = json.load(open(os.path.join(out, "wechat-crypto.json")))
paired = json.load(open(os.path.join(out, "push-paired.json")))
print("\nPush path per message (verify signature + decrypt + parse), one core, identical inputs")
print("  wxopen and the floor: medians of 2,001 alternating batches (ratio = median of per-batch ratios);")
print("  criterion's own figures for the same code are in target/bench/criterion.txt")
print(f"  {'case':<11} {'wxopen':>10} {'AES+SHA1 floor':>15} {'wxopen/floor':>13} {'wechatpy':>11} {'speedup':>8} {'wechat-crypto':>14} {'speedup':>8}")
for case in ("ticket", "authorized"):
    w, f, r = paired[case]["wxopen_ns"], paired[case]["floor_ns"], paired[case]["ratio"]
    p, n = py.get(case), js.get(case)
    ps = f"{p / w:7.1f}x" if p else "    n/a"
    ns = f"{n / w:7.1f}x" if n else "    n/a"
    print(f"  {case:<11} {w / 1000:8.2f}µs {f / 1000:13.2f}µs {r:12.2f}x {(p or 0) / 1000:9.2f}µs {ps} {(n or 0) / 1000:12.2f}µs {ns}")

print("\nRefresher (one scheduled run of the release token-refresh binary against moto + sandbox)")
print(f"  {'authorizers':>11} {'due':>7} {'refreshed':>9} {'seconds':>8} {'WeChat calls':>12} {'DynamoDB req':>12} {'per token':>9} {'peak RSS':>9}")
for line in open(os.path.join(out, "refresh.jsonl")):
    r = json.loads(line)
    rss = r.get("refresher_peak_rss_kib") or 0
    print(f"  {r['authorizers']:>11} {r['due']:>7} {r['refreshed']:>9} {r['seconds']:>8.1f} {r['wechat_authorizer_token_calls']:>12} {r['dynamodb_requests_total']:>12} {r['dynamodb_requests_per_refreshed']:>9.2f} {rss / 1024:>7.1f}MB")

print("\nRelease binaries (x86_64 here; `make build` makes the arm64 bundles) and start-to-ready time")
init = {}
for line in open(os.path.join(out, "init.jsonl")):
    r = json.loads(line)
    init[os.path.basename(r["binary"])] = r.get("median_ms")
print(f"  {'function':<22} {'raw':>8} {'gzip -9':>8} {'init (median of 5)':>19}")
for line in open(os.path.join(out, "sizes.txt")):
    name, raw, gz = line.split()
    ms = init.get(name)
    ms_s = f"{ms:.1f} ms" if ms is not None else "n/a"
    print(f"  {name:<22} {int(raw) / 1e6:6.2f}MB {int(gz) / 1e6:6.2f}MB {ms_s:>19}")

events_path = os.path.join(out, "events.jsonl")
if os.path.exists(events_path):
    print("\nEvents out: calls per push, counted on the wire by a proxy in front of moto (handlers as deployed)")
    print(f"  {'kind':<28} {'DynamoDB reads':>14} {'writes':>7} {'PutEvents':>10} {'median':>9}  by operation")
    latency = None
    for line in open(events_path):
        r = json.loads(line)
        if r["measure"] == "publish_latency":
            latency = r
            continue
        ops = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["dynamodb_per_push"].items()))
        print(f"  {r['kind']:<28} {r['dynamodb_reads_per_push']:>14.0f} {r['dynamodb_writes_per_push']:>7.0f} {r['put_events_per_push']:>10.0f} {r['median_ms']:>7.1f}ms  {ops}")
    if latency:
        print(f"  publishing adds {latency['added_ms']:.1f} ms to a message (median {latency['median_ms_with_bus']:.1f} ms with the bus, {latency['median_ms_without_bus']:.1f} ms without; PutEvents itself {latency['event_publish_ms_median']:.0f} ms median on moto)")

releases_path = os.path.join(out, "releases.json")
if os.path.exists(releases_path):
    r = json.load(open(releases_path))
    print(f"\nFleet release: {r['targets']} sandbox mini programs, concurrency {r['concurrency']}, {r['pollers']} pollers (worker in process)")
    print(f"  job {r['state']}, {r['released']} released in {r['wall_seconds']:.0f} s ({r['targets_per_second']:.2f} targets/s)")
    print(f"  per target: DynamoDB {r['dynamodb_requests_per_target']:.1f} requests, SQS {r['sqs_requests_per_target']:.2f}, WeChat {r['wechat_calls_per_target']:.2f}")
    print(f"  DynamoDB by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(r["dynamodb_requests"].items())))
    print(f"  WeChat by API: " + ", ".join(f"{k} {v}" for k, v in sorted(r["wechat_calls"].items())))
    print(f"  peak RSS (VmHWM, the whole bench process) {r['peak_rss_kib_before']} KiB before the job, {r['peak_rss_kib_after']} KiB after")
