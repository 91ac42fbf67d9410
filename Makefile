# hotfolder: `make run` starts the main job, `make test` runs every test. Both set up .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# System tools the tests drive, as command:package (installed with apt-get when missing; the
# dashboard's e2e test drives Debian's chromium through chromium-driver's chromedriver; the
# fleet's tests start Debian's redis-server on loopback; the systemd install test runs
# contrib/systemd/install.sh, which needs systemd-sysusers, and systemd-analyze verify).
SYSTEM_TOOLS := curl:curl rsync:rsync chromium:chromium chromedriver:chromium-driver redis-server:redis-server systemd-sysusers:systemd systemd-analyze:systemd
# The benchmarks' baselines, as command:package (ImageMagick's mogrify, libvips' vipsthumbnail).
BENCH_TOOLS := mogrify:imagemagick vipsthumbnail:libvips-tools curl:curl

.PHONY: run status test venv venv-test system-tools bench-tools bench bench-quick lint clean

$(BIN)/hotfolder: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

venv: $(BIN)/hotfolder

$(VENV)/.test-installed: $(BIN)/hotfolder pyproject.toml $(wildcard contrib/*/pyproject.toml)
	$(BIN)/pip install --quiet -e ".[test]"
	for d in contrib/*/; do [ -f "$$d/pyproject.toml" ] && $(BIN)/pip install --quiet -e "$$d[test]" || true; done
	touch $@

venv-test: $(VENV)/.test-installed

system-tools:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

bench-tools:
	@missing=""; for t in $(BENCH_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

# The daemon watches ./inbox (chain showcase, outputs in ./outbox); its journal is in ./state
# (config/hotfolder.toml names it, so `make status` and `hotfolder status` find it).
run: venv
	mkdir -p inbox outbox
	@if [ -z "$$VENICE_API_KEY" ]; then \
	  echo "VENICE_API_KEY is not set: running against the local sandbox (--sandbox); results are simulated."; \
	  sandbox=--sandbox; fi; \
	echo "watching ./inbox: drop images there (try: cp examples/try-it.jpg inbox/); results land in ./outbox; Ctrl-C stops."; \
	echo "status, from another terminal in $(CURDIR): make status  (or: $(BIN)/hotfolder --config config/hotfolder.toml status)"; \
	exec $(BIN)/hotfolder --config config/hotfolder.toml run $$sandbox

# What the daemon of `make run` is doing: jobs by state per folder, in flight, errors, spend.
status: venv
	@$(BIN)/hotfolder --config config/hotfolder.toml status

test: venv-test system-tools
	$(BIN)/ruff check core plugins tests contrib
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 --dist loadfile -q
	$(MAKE) bench-quick

# Benchmarks (tests/bench): hotfolder and its baselines, alternating, in one run.
# `bench` writes docs/benchmarks.md (about 27 minutes on 2 cores); `bench-quick` runs every benchmark on a
# tiny size in under a minute, prints its report and fails only if a benchmark crashes.
bench: venv-test bench-tools
	$(BIN)/python -m tests.bench.run --output docs/benchmarks.md

bench-quick: venv-test bench-tools
	$(BIN)/python -m tests.bench.run --quick

lint: venv-test
	$(BIN)/ruff check core plugins tests contrib
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/ruff format --check core plugins tests contrib

clean:
	rm -rf $(VENV) outbox .pytest_cache
