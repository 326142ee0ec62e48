#!/usr/bin/env bash
# `make bench`: Outpost against Eclipse Mosquitto under the same loads
# (issue #4), then the criterion micro-benches. Loopback only, bounded in
# time: about 7 minutes in full, about 3 with BENCH_QUICK=1.
#
# Results: target/bench/results.{md,json,svg}; micro-benches in
# target/criterion/. See docs/performance.md for the method.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO=${CARGO:-cargo}
OUT=target/bench
QUICK=${BENCH_QUICK:-}
mkdir -p "$OUT"

say() { printf '\n== %s\n' "$*" >&2; }

# Mosquitto: the reference broker, from Debian's package.
MOSQUITTO=$(command -v mosquitto || true)
[ -z "$MOSQUITTO" ] && [ -x /usr/sbin/mosquitto ] && MOSQUITTO=/usr/sbin/mosquitto
if [ -z "$MOSQUITTO" ]; then
	say "installing mosquitto"
	if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
	$SUDO apt-get update -qq
	# The package would start its own service on :1883 where init allows;
	# the bench starts its own instances on free ports instead.
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
	MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
fi
MOSQUITTO_PASSWD=$(command -v mosquitto_passwd || echo /usr/bin/mosquitto_passwd)

say "building Outpost and the load generator (release)"
$CARGO build --release
# Its own crate and target directory: it never links the broker.
$CARGO build --release --manifest-path benches/loadgen/Cargo.toml --target-dir target/loadgen

# The flash group's fsync shim (issue #26): an SD card's flush time on any disk,
# and a count of flushes.
SHIM=$PWD/target/loadgen/flushdelay.so
cc -O2 -shared -fPIC -o "$SHIM" benches/loadgen/shim/flushdelay.c -ldl
ARGS_SHIM=(--flush-shim "$SHIM")

# 10 000 idle clients need 10 000 descriptors here and as many in the broker.
HARD=$(ulimit -Hn)
if [ "$HARD" = unlimited ] || [ "$HARD" -gt 65536 ]; then HARD=65536; fi
ulimit -n "$HARD"
if [ "$HARD" -lt 10300 ]; then
	echo "warning: fd limit $HARD is below what the idle scenario needs (10 300)" >&2
fi

# Password cases (the reconnect storm's second case, the chat-service cases,
# the issue #3 login burst, whose 50 distinct accounts loadgen creates the
# same way, and the 1000-member room, whose 20 senders have accounts of
# their own), once `outpost user add` works.
ARGS=()
PROBE=$(mktemp -d)
PW="bench-$RANDOM$RANDOM"
if echo "$PW" | ./target/release/outpost --db "$PROBE/probe.db" user add probe --password-stdin \
	>/dev/null 2>&1; then
	ARGS+=(--auth "bench:$PW")
else
	echo "note: \`outpost user add\` unavailable; the reconnect storm runs anonymous only" >&2
fi
rm -rf "$PROBE"

[ -n "$QUICK" ] && [ "$QUICK" != 0 ] && ARGS+=(--quick)

say "load comparison: Outpost vs Mosquitto ${QUICK:+(quick)}"
status=0
# Each broker under test gets core 0 to itself and the load generator core 1
# (both brokers alike), so they do not compete for one core.
PIN=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
	PIN=(taskset -c 1)
	ARGS+=(--broker-cpus 0)
fi

"${PIN[@]}" ./target/loadgen/release/loadgen \
	--outpost ./target/release/outpost \
	--mosquitto "$MOSQUITTO" --mosquitto-passwd "$MOSQUITTO_PASSWD" \
	--out "$OUT" "${ARGS_SHIM[@]}" "${ARGS[@]}" || status=$?

if [ -z "$QUICK" ] || [ "$QUICK" = 0 ]; then
	say "micro-benches (criterion)"
	$CARGO bench --bench codec --bench trie --bench chat 2>&1 |
		grep -E '^[a-z_]+/|time:' | grep -v '%' | tee "$OUT/micro.txt" || status=$?
fi

say "results: $OUT/results.md, $OUT/results.json, $OUT/results.svg"
exit "$status"
