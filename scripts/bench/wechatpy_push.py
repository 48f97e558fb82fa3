"""wechatpy on the push path: verify + decrypt (WeChatCrypto.decrypt_message) + parse
(xmltodict, as wechatpy's component code does), on the inputs the Rust bench wrote.
Prints {"name": ns_per_message}."""
import json
import sys
import time

import xmltodict
from wechatpy.crypto import WeChatCrypto


def main(path, seconds):
    data = json.load(open(path))
    crypto = WeChatCrypto(data["token"], data["encoding_aes_key"], data["appid"])
    out = {}
    for case in data["cases"]:
        args = (case["body"], case["msg_signature"], data["timestamp"], data["nonce"])
        msg = xmltodict.parse(crypto.decrypt_message(*args))["xml"]
        assert msg["AppId"] == data["appid"]
        best = None
        for _ in range(5):
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds / 5:
                for _ in range(100):
                    xmltodict.parse(crypto.decrypt_message(*args))["xml"]
                n += 100
            per = (time.perf_counter() - start) / n * 1e9
            best = per if best is None else min(best, per)
        out[case["name"]] = best
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 3.0)
