# Outpost: `make run` starts the broker on its built-in defaults, `make test`
# installs the external test clients when missing and runs every check CI runs.

CARGO ?= cargo

.PHONY: build run test clean

build:
	$(CARGO) build --release

# No arguments: MQTT on 127.0.0.1:1883, database ./outpost.db, web console
# on 127.0.0.1:8080 (see docs/config.md).
run: build
	./target/release/outpost

# Benches only compile here (`--no-run`), so they cannot rot; `cargo test
# --all-targets` skips doc tests, hence the separate `--doc` run.
test:
	bash scripts/install-test-deps.sh
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets
	$(CARGO) test --doc
	@if ls benches/*.rs >/dev/null 2>&1; then \
		echo "$(CARGO) bench --no-run"; $(CARGO) bench --no-run; \
	fi

clean:
	$(CARGO) clean

# Outpost vs Mosquitto under the same loads, then the micro-benches; about
# 8 minutes (BENCH_QUICK=1: about 1). Results in target/bench/, method in
# docs/performance.md.
.PHONY: bench
bench:
	CARGO="$(CARGO)" bash scripts/bench.sh

# Runs each fuzz target for FUZZ_SECONDS (see docs/fuzzing.md); installs cargo-fuzz when
# missing. cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP unlocks on stable.
# New inputs go to fuzz/work/<target>/ (ignored), crashes to fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= decode_v5 decode_v311 connection

.PHONY: fuzz
fuzz:
	$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p work/$$t && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t work/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=30 || exit 1; \
	done
