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
