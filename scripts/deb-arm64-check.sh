#!/usr/bin/env bash
# `make deb-arm64` calls this on the package it built: the control fields, and the binary
# inside must be a stripped AArch64 executable (readelf; `file` too when installed). When qemu-aarch64 (Debian's qemu-user) is
# installed, the binary also runs under it against the cross libc: --version, then one
# retained message through mosquitto_pub/mosquitto_sub on a free loopback port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
deb=$(ls -t target/debian/outpost_*_arm64.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "no target/debian/outpost_*_arm64.deb"
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

[ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || fail "$deb: Architecture is not arm64"
dpkg-deb -x "$deb" "$work/root"
bin=$work/root/usr/bin/outpost
if command -v file >/dev/null; then
    described=$(file -b "$bin")
    echo "$deb: $described"
    [[ $described == *"ARM aarch64"* && $described == *", stripped"* ]] ||
        fail "file: not a stripped AArch64 executable"
fi
readelf -h "$bin" | grep -q 'Machine:.*AArch64' || fail "readelf: machine is not AArch64"
if readelf -S --wide "$bin" | grep -qE ' \.(symtab|debug_info|debug_line) '; then
    fail "readelf: the binary is not stripped"
fi
echo "ok: $(basename "$deb") holds a stripped AArch64 binary ($(stat -c %s "$bin") bytes)"

if ! command -v qemu-aarch64 >/dev/null; then
    echo "skip: qemu-aarch64 is not installed (apt-get install qemu-user) to run it"
    exit 0
fi
qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin")
[ "$("${qemu[@]}" --version)" = "outpost $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] ||
    fail "--version under qemu"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=info "${qemu[@]}" --listen "127.0.0.1:$port" --http off --db "$work/outpost.db" \
    2>"$work/log" &
pid=$!
for _ in $(seq 100); do
    grep -q "mqtt listener on 127.0.0.1:$port" "$work/log" && break
    sleep 0.1
done
mosquitto_pub -h 127.0.0.1 -p "$port" -t arm64/check -m ok -q 1 -r || fail "mosquitto_pub to the arm64 broker"
[ "$(mosquitto_sub -h 127.0.0.1 -p "$port" -t arm64/check -C 1 -W 10)" = ok ] || fail "mosquitto_sub"
echo "ok: the arm64 broker runs under qemu-aarch64 and serves mosquitto_pub/sub"
