# SwiftROMA — two commands: `make run` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := libtokyocabinet-dev tokyocabinet-bin libssl-dev libbz2-dev zlib1g-dev libmemcached-tools memcached python3-venv binutils iproute2
# Release builds: no dynamic exclusivity checks in any module, SwiftNIO's included (our own
# targets already build that way). callgrind showed swift_beginAccess and its thread-local access
# set in NIO's channel and write paths at 13 % of romad's instructions per request.
RELEASE_FLAGS := -Xswiftc -enforce-exclusivity=unchecked
PORT ?= 10001
ADDRESS ?= localhost
RUN_DIR ?= run

.PHONY: deps run build release test clean

## Install what is missing: Debian packages (one apt-get update first) and the Python test venv.
deps: .deps-apt $(VENV)/.ok

.deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.ok: tests/integration/requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r tests/integration/requirements.txt
	@touch $@

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release $(RELEASE_FLAGS)

## Build and start a local node with TokyoCabinet storage under ./run/ (ready for `cpdb $(PORT)`).
run: release
	@mkdir -p $(RUN_DIR)
	@echo "romad $(ADDRESS) -p $(PORT) --storage tc --storage-path $(RUN_DIR)   (Ctrl-C stops it cleanly)"
	exec $$($(SWIFT) build -c release --show-bin-path)/romad $(ADDRESS) -p $(PORT) --storage tc --storage-path $(RUN_DIR)

## Every test: Swift unit tests, integration tests against real romad processes, bench smoke run.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	BIN=$$($(SWIFT) build --show-bin-path); \
	  ROMAD_BIN=$$BIN/romad CPDB_BIN=$$BIN/cpdb ROMA_ADM_BIN=$$BIN/roma-adm \
	  $(PY) -m pytest -q -p no:cacheprovider tests/integration
	$(MAKE) --no-print-directory bench-smoke

include bench/bench.mk

clean:
	rm -rf .build $(RUN_DIR)
