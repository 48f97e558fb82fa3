# wxopen: the verbs. `make demo` and `make test` work on a fresh machine with Rust, Python 3 and make.
# `make` alone (or `make help`) lists the verbs from their `## verb: text` comments below
# (a `##` line indented by four spaces continues the one above).
.DEFAULT_GOAL := help
VENV      ?= .venv
TOOLS     ?= .venv-tools
PYTHON    ?= python3
STAMP     := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed
export SAM_CLI_TELEMETRY := 0
export WXOPEN_PYTHON     := $(CURDIR)/$(VENV)/bin/python
export XDG_CACHE_HOME    ?= $(CURDIR)/target/xdg-cache
# Tests share one moto and spawn the wechatpy shim: a modest thread count keeps a 2-core box steady.
TEST_THREADS ?= 4
# The browser the headless-Chromium tests drive (Debian's package; `make browser` installs it).
BROWSER_BIN ?= /usr/bin/chromium
# Proptest cases per property in `make test`; `make fuzz` runs many more.
export PROPTEST_CASES ?= 256
WITH_MOTO = set -e; scripts/local-aws.sh start; trap 'scripts/local-aws.sh stop' EXIT; eval "$$(scripts/local-aws.sh env)";

.PHONY: help demo dev test lint fmt bench soak fuzz screenshot package build sam-build validate deploy venv tools moto-start moto-stop clean browser

$(STAMP): scripts/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r scripts/requirements-dev.txt
	touch $@

# cargo-lambda (with zig) and the SAM CLI: only for building Lambda bundles and deploying.
$(TOOLS_STAMP): scripts/requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --upgrade pip
	$(TOOLS)/bin/pip install -q -r scripts/requirements-tools.txt
	touch $@

venv: $(STAMP)
tools: $(TOOLS_STAMP)

## help: this list.
help:
	@awk 'match($$0, /^## [a-z][a-z0-9-]*: /) { printf "  make %-12s %s\n", substr($$0, 4, RLENGTH - 5), substr($$0, RLENGTH + 1); next } \
	      /^##    / { printf "  %-17s %s\n", "", substr($$0, 7) }' $(MAKEFILE_LIST)

## demo: the whole provider story end to end on this machine; leaves nothing running.
demo: $(STAMP)
	cargo build -q -p wxopen-tests --bin wxopen-local
	cargo build -q -p wxopen-cli
	@$(WITH_MOTO) target/debug/wxopen-local demo

## dev: the local stack (moto, sandbox, gateway; PORT=8787) left running, URLs printed; Ctrl-C stops it.
##    Aim it at another WeChat: WECHAT_API_BASE, WECHAT_MP_BASE, WECHAT_OPEN_BASE and
##    WXOPEN_CREDENTIALS_JSON or WXOPEN_CREDENTIALS_FILE (see README "Local development").
dev: $(STAMP)
	cargo build -q -p wxopen-tests --bin wxopen-local
	@$(WITH_MOTO) target/debug/wxopen-local serve $(or $(PORT),8787)

## test: the full suite (unit, moto-backed adapter and handler tests, sandbox e2e, wechatpy interop,
##    the sign-in page in headless Chromium).
##    Three phases: everything else, on one moto; the token-lifecycle tests (their refresh
##    leases are seconds long, so a moto slowed by other tests breaks them); the heavy runs (the
##    shortened soak days, the 200-target fleet releases) side by side, each on its own moto.
TIMED_TESTS := tokens::
HEAVY_TESTS := soak:: e2e::releases::
test: $(STAMP) browser
	@$(WITH_MOTO) cargo test --workspace --locked -- --test-threads=$(TEST_THREADS) $(foreach t,$(TIMED_TESTS) $(HEAVY_TESTS),--skip $(t)) && \
	  echo "== the token-lifecycle tests: $(TIMED_TESTS)" && \
	  cargo test --workspace --locked -- --test-threads=2 $(TIMED_TESTS)
	@echo "== the heavy runs, side by side, each on its own moto: $(HEAVY_TESTS)"
	@scripts/test-side-by-side.sh 2 $(HEAVY_TESTS)

## lint: formatting, clippy (warnings are errors), template lint.
lint: $(STAMP)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

## fmt: format every crate (rustfmt).
fmt:
	cargo fmt --all

## bench: the push path against wechatpy and wechat-crypto, the refresher at scale, binary sizes and init time,
##    a fleet release over 2,000 sandbox mini programs (BENCH_RELEASES=).
bench: $(STAMP)
	@$(WITH_MOTO) scripts/bench.sh

## soak: a compressed day under seeded faults (SOAK_SEED=, SOAK_MERCHANTS=, SOAK_MESSAGES=, ...), then
##    the same work over 100 merchants; prints every invariant and the figures, exits 1 naming a broken one.
##    SOAK_BROKEN=no_outbox_sweep or no_audit_poll runs a deliberately broken deployment (it must fail).
soak: $(STAMP)
	cargo build -q --locked -p wxopen-tests --bin wxopen-soak
	@$(WITH_MOTO) target/debug/wxopen-soak full --compare 100

## screenshot: the authorization page in headless Chromium (apt-get install chromium), link checked.
screenshot: $(STAMP) browser
	@$(WITH_MOTO) scripts/screenshot-authorize.sh

## browser: Debian's chromium and fonts-noto-cjk for the browser tests, installed with apt-get only
##    when missing (sudo when not root). If they cannot be installed the browser tests fail under
##    CI=true (and skip, saying so, otherwise).
browser:
	@if [ -x $(BROWSER_BIN) ] && [ -n "$$(fc-list :lang=zh 2>/dev/null)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "make browser: no apt-get; install chromium and a CJK font by hand"; exit 0; fi; \
	SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	echo "make browser: apt-get install chromium fonts-noto-cjk"; \
	$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk \
	  || echo "make browser: the install failed; the browser tests fail under CI=true"

## fuzz: the hostile-input properties with many more cases (CASES=, default 100,000); prints
##    `fuzz <property>: <n> cases passed` for each property run through the counting runner.
fuzz:
	PROPTEST_CASES=$(or $(CASES),100000) cargo test --release --locked -p wxopen --test hostile_input -- --test-threads=2 --nocapture

## build: the Lambda bundles (arm64, as deployed) with cargo-lambda.
build: $(TOOLS_STAMP)
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH cargo lambda build --release --arm64 --workspace

## package: every function's Lambda bootstrap with cargo-lambda (arm64 when possible), sizes printed.
package: $(TOOLS_STAMP)
	scripts/package.sh

## validate: cfn-lint and `sam validate --lint`.
validate: $(STAMP) $(TOOLS_STAMP)
	$(VENV)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml

## deploy: sam build + sam deploy --guided (needs AWS credentials; see README "Deploy").
deploy: $(TOOLS_STAMP)
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(TOOLS)/bin/sam build
	PATH=$(CURDIR)/$(TOOLS)/bin:$$PATH $(TOOLS)/bin/sam deploy --guided

## moto-start: moto (local DynamoDB + Secrets Manager) in the background; `moto-stop` stops it.
moto-start: $(STAMP)
	scripts/local-aws.sh start
moto-stop:
	scripts/local-aws.sh stop

## clean: stop moto; remove the virtualenvs, target/ and .aws-sam.
clean:
	scripts/local-aws.sh stop
	rm -rf $(VENV) $(TOOLS) target .aws-sam
