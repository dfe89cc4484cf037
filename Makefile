# Two set-up commands on a fresh machine: `make demo` (the speech audit end to end) and
# `make test` (the test suite). Both create the virtualenv and install what they need.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEBS   := mosquitto chromium
DEMO_OUT ?= runs/demo

.PHONY: demo test test-fast lint debs venv bench-deps clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# Debian packages the tests and the demo use (mosquitto: the real MQTT broker;
# chromium: renders the audit summary in a test).
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: $(STAMP) debs
	$(PY) -m pytest

# The edit loop: everything but the tests marked slow (recipes, brokers, browser, subprocesses).
test-fast: $(STAMP) debs
	$(PY) -m pytest -m "not slow"

# Extra packages the peer-comparison benchmarks use (IBM ART).
bench-deps: $(STAMP)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,benchmarks]'

# Lint, formatting and function complexity (ruff's C90 at 12, pyproject.toml); .ci/run runs it.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: $(STAMP) debs
	$(PY) -m auditor.cli demo --out $(DEMO_OUT)

clean-venv:
	rm -rf $(VENV)
