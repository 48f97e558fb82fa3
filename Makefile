# wxopen: the verbs. `make test` and `make demo` work on a fresh machine with Rust, Python 3 and make.
VENV      ?= .venv
PYTHON    ?= python3
STAMP     := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export WXOPEN_PYTHON     := $(CURDIR)/$(VENV)/bin/python
# Tests that share one moto and the wechatpy shim: a modest thread count keeps a 2-core box steady.
TEST_THREADS ?= 4

.PHONY: test lint fmt venv moto-start moto-stop clean

$(STAMP): scripts/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r scripts/requirements-dev.txt
	touch $@

venv: $(STAMP)

## test: the full suite (unit, moto-backed adapter and handler tests, wechatpy interop).
test: $(STAMP)
	@set -e; scripts/local-aws.sh start; trap 'scripts/local-aws.sh stop' EXIT; \
	eval "$$(scripts/local-aws.sh env)"; \
	cargo test --workspace --locked -- --test-threads=$(TEST_THREADS)

## lint: formatting, clippy (warnings are errors), template lint.
lint: $(STAMP)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml

fmt:
	cargo fmt --all

moto-start: $(STAMP)
	scripts/local-aws.sh start
moto-stop:
	scripts/local-aws.sh stop

clean:
	scripts/local-aws.sh stop
	rm -rf $(VENV) target
