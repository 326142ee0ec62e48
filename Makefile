# Outpost: `make run` starts the broker on its built-in defaults, `make test`
# installs the external test clients when missing and runs every check CI runs,
# `make deb` builds the Debian package and `make deb-check` installs, exercises
# and purges it (docs/deploy.md).

CARGO ?= cargo

.PHONY: build build-deps run test clean

# Rust and a C compiler, from the distribution when missing (scripts/install-build-deps.sh).
build-deps:
	@bash scripts/install-build-deps.sh

build: build-deps
	$(CARGO) build --release

# No arguments: MQTT on 127.0.0.1:1883, database ./outpost.db, web console
# on 127.0.0.1:8080 (see docs/config.md).
run: build
	./target/release/outpost

# `--all-targets` builds the benches too (in the test profile, once, with the
# rest), so they compile here and cannot rot; no separate `cargo bench --no-run`,
# which would build every dependency again in the bench profile. It skips doc
# tests, hence the separate `--doc` run.
test:
	bash scripts/install-build-deps.sh --test
	bash scripts/install-test-deps.sh
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets
	$(CARGO) test --doc

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
FUZZ_TARGETS ?= decode_v5 decode_v311 connection ws_frames

.PHONY: fuzz
fuzz:
	$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p work/$$t && \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t work/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=30 || exit 1; \
	done

# The Debian package (docs/deploy.md), built by cargo-deb (installed when missing).
# The packaged config is assets/outpost.toml with the database under /var/lib/outpost;
# the grep fails the build if that line ever stops matching. --strip: the release
# profile keeps line tables for backtraces, the package ships the binary without them.
CARGO_DEB_VERSION ?= ^3.8
PACKAGED_DB := /var/lib/outpost/outpost.db

.PHONY: deb deb-check deb-arm64 deb-armhf packaged-config cargo-deb

# After a package is built: its size and the size of the stripped binary in it, measured.
define report-size
	@deb=$$(ls -t target/debian/outpost_*_$(1).deb | head -n 1); \
	bin=$$(dpkg-deb --fsys-tarfile "$$deb" | tar -xO ./usr/bin/outpost | wc -c); \
	echo "$$deb: $$(stat -c %s "$$deb") bytes; usr/bin/outpost stripped: $$bin bytes"
endef
packaged-config:
	mkdir -p target/packaging
	sed 's|^db = "outpost.db"$$|db = "$(PACKAGED_DB)"|' assets/outpost.toml > target/packaging/outpost.toml
	grep -qx 'db = "$(PACKAGED_DB)"' target/packaging/outpost.toml

cargo-deb:
	@$(CARGO) deb --version >/dev/null 2>&1 || \
		$(CARGO) install cargo-deb --locked --version '$(CARGO_DEB_VERSION)'

deb: packaged-config build-deps
	@$(MAKE) --no-print-directory cargo-deb
	$(CARGO) deb --strip
	$(call report-size,$(shell dpkg --print-architecture))

# Installs the package on this machine (root, Debian), checks files, user, permissions
# and the unit, runs the broker as the unit would, upgrades over it, then purges it.
# Slow (a release build), so not part of `make test`; .ci/run runs it after.
deb-check: deb
	bash scripts/deb-check.sh

# ARM packages from an x86-64 Debian machine, one recipe for both: `make deb-arm64` (64-bit
# Raspberry Pi OS and Debian arm64) and `make deb-armhf` (32-bit Raspberry Pi OS, ARMv7 with
# the hard-float ABI). The Rust target (through rustup), Debian's cross C compiler for the
# bundled SQLite and ring, and qemu-user are installed when missing. The package goes to
# target/debian/ (cargo-deb clears the other packages there) and is then checked by
# scripts/deb-cross-check.sh: a stripped binary of the right architecture that serves MQTT
# under qemu.
RUST_TARGET_arm64 := aarch64-unknown-linux-gnu
RUST_TARGET_armhf := armv7-unknown-linux-gnueabihf
GNU_TRIPLET_arm64 := aarch64-linux-gnu
GNU_TRIPLET_armhf := arm-linux-gnueabihf
QEMU_arm64 := qemu-aarch64
QEMU_armhf := qemu-arm

deb-arm64 deb-armhf: deb-%: packaged-config build-deps
	@$(MAKE) --no-print-directory cargo-deb
	@command -v rustup >/dev/null || \
		{ echo "deb-$*: needs rustup, for the Rust standard library of $(RUST_TARGET_$*)"; exit 1; }
	rustup target list --installed | grep -qx $(RUST_TARGET_$*) || rustup target add $(RUST_TARGET_$*)
	command -v $(GNU_TRIPLET_$*)-gcc >/dev/null && command -v $(QEMU_$*) >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq gcc-$(GNU_TRIPLET_$*) qemu-user; }
	target=$(RUST_TARGET_$*); \
	env CARGO_TARGET_$$(echo $$target | tr a-z- A-Z_)_LINKER=$(GNU_TRIPLET_$*)-gcc \
		CC_$(subst -,_,$(RUST_TARGET_$*))=$(GNU_TRIPLET_$*)-gcc \
		$(CARGO) deb --strip --target $$target
	$(call report-size,$*)
	bash scripts/deb-cross-check.sh $*
