# odoo-hosting: the two commands a newcomer needs are `make preflight` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock | cut -c1-12)
SYSTEM_PACKAGES := $(shell grep -v '^\#' tests/system-packages.txt)
PYTEST_ARGS ?=

.PHONY: preflight test test-unit test-vm lint system-deps bench bench-backup bench-update lock venv clean

# Offline preview of every example stack with the policy verdict (no cloud account needed), with the
# semantics of `pulumi preview` of a new stack: computed outputs unknown, every policy still judged.
preflight: $(STAMP)
	$(PY) -m preflight

# Every test: lint and types first, then unit (mocks), renderers, policies, preflight, real software.
test: lint system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff (rules in pyproject.toml) on everything, mypy --strict on the product code; the three
# Pulumi entry points share the module name __main__, so each gets a run of its own.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy __main__.py
	$(VENV)/bin/mypy organisation/__main__.py
	$(VENV)/bin/mypy policies/__main__.py

# Only the VM boots (also part of `make test`): each example stack's host in QEMU,
# checked from outside. The Debian image is cached in ${XDG_CACHE_HOME:-~/.cache}/odoo-hosting/vm.
test-vm: $(STAMP) system-deps
	$(PY) -m pytest -m vm $(PYTEST_ARGS)

# Only the fast tests that need no system packages.
test-unit: $(STAMP)
	$(PY) -m pytest -m "not system" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/preflight_fleet.py

# restic vs duplicity on a generated Odoo-like data set (200 MiB filestore + 50 MiB dump); prints figures.
# Not part of `make test`: minutes of CPU. BENCH_ARGS="--filestore-mb 20 --dump-mb 5" for a quick run.
bench-backup: $(STAMP) system-deps
	$(PY) bench/backup_compare.py $(BENCH_ARGS)

# CD-01: the site's longest gap and failed requests while each app container is replaced as
# `pulumi up` would, under Debian's Docker engine (tests/docker's host), before and now. Needs root;
# not part of `make test` (about 4 minutes). BENCH_ARGS="--stack example-private --runs 3".
bench-update: $(STAMP) system-deps
	$(PY) bench/app_update.py $(BENCH_ARGS)

venv: $(STAMP)

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	rm -f $(VENV)/.installed-* && touch $@

# Debian packages the real-software tests run; installed only when root
# (a developer without root gets skips, CI=true turns those into failures).
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:" $$missing; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else echo "not root: skipping Debian packages:" $$missing "(their tests will skip)"; fi

# Recompile the lock after changing requirements.in.
lock: $(STAMP)
	$(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links -o requirements.lock requirements.in
	$(PY) tools/pack_requirements.py

clean:
	rm -rf $(VENV) .pytest_cache
