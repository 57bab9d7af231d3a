# Benchmarks (included from the Makefile; uses $(SWIFT), $(PY) and the `deps` target).
#
#   make bench        release builds, then the full comparison with memcached (about 20 min);
#                     prints the tables and writes bench/RESULTS.md (+ bench/results-latest.json)
#   make bench-smoke  the same driver in a few-seconds mode (< 60 s, debug builds as `make test`
#                     already has them); exits non-zero on any error
#
# BENCH_ARGS passes options to bench/bench.py, e.g. BENCH_ARGS='--parts matrix,memcslap'.
# BENCH_SMOKE_CONFIG=release runs the smoke test on release builds instead.

BENCH_ARGS ?=
BENCH_SMOKE_CONFIG ?= debug

.PHONY: bench bench-smoke

bench: deps
	$(SWIFT) build -c release $(RELEASE_FLAGS)
	$(PY) bench/bench.py --bin-dir "$$($(SWIFT) build -c release --show-bin-path)" $(BENCH_ARGS)

bench-smoke: deps
	$(SWIFT) build -c $(BENCH_SMOKE_CONFIG) $(if $(filter release,$(BENCH_SMOKE_CONFIG)),$(RELEASE_FLAGS))
	$(PY) bench/bench.py --smoke --bin-dir "$$($(SWIFT) build -c $(BENCH_SMOKE_CONFIG) --show-bin-path)" $(BENCH_ARGS)
