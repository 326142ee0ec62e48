#!/usr/bin/env bash
# `make deb-arm64` and `make deb-armhf` call this with the Debian architecture of the
# package they built: the control fields, and the binary inside must be a stripped
# executable for that machine (readelf; `file` too when installed): AArch64 for arm64,
# 32-bit ARMv7 with the hard-float ABI for armhf. When qemu-user is installed, the
# binary also runs under it against the cross libc: --version, then one retained message
# through mosquitto_pub/mosquitto_sub on a free loopback port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
arch=${1:?usage: deb-cross-check.sh arm64|armhf}
case $arch in
arm64)
    described_as=("ARM aarch64")
    machine=AArch64
    qemu=qemu-aarch64
    sysroot=/usr/aarch64-linux-gnu
    ;;
armhf)
    described_as=("32-bit" "ARM, EABI5")
    machine=ARM
    qemu=qemu-arm
    sysroot=/usr/arm-linux-gnueabihf
    ;;
*) fail "unknown architecture $arch" ;;
esac

deb=$(ls -t target/debian/outpost_*_"$arch".deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "no target/debian/outpost_*_$arch.deb"
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "$deb: Architecture is not $arch"
dpkg-deb -x "$deb" "$work/root"
bin=$work/root/usr/bin/outpost
if command -v file >/dev/null; then
    described=$(file -b "$bin")
    echo "$deb: $described"
    for part in "${described_as[@]}" ", stripped"; do
        [[ $described == *"$part"* ]] || fail "file: not a stripped $arch executable ($part)"
    done
fi
readelf -h "$bin" | grep -qE "Machine: +$machine\$" || fail "readelf: machine is not $machine"
if [ "$arch" = armhf ]; then
    readelf -h "$bin" | grep -q 'Flags:.*hard-float ABI' || fail "readelf: not the hard-float ABI"
    readelf -A "$bin" | grep -q 'Tag_CPU_arch: v7' || fail "readelf: not built for ARMv7"
fi
if readelf -S --wide "$bin" | grep -qE ' \.(symtab|debug_info|debug_line) '; then
    fail "readelf: the binary is not stripped"
fi
echo "ok: $(basename "$deb") holds a stripped $machine binary of $(stat -c %s "$bin") bytes"

if ! command -v "$qemu" >/dev/null; then
    echo "skip: $qemu is not installed (apt-get install qemu-user) to run it"
    exit 0
fi
run=("$qemu" -L "$sysroot" "$bin")
[ "$("${run[@]}" --version)" = "outpost $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] ||
    fail "--version under $qemu"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=info "${run[@]}" --listen "127.0.0.1:$port" --http off --db "$work/outpost.db" \
    2>"$work/log" &
pid=$!
for _ in $(seq 300); do
    grep -q "mqtt listener on 127.0.0.1:$port" "$work/log" && break
    sleep 0.1
done
mosquitto_pub -h 127.0.0.1 -p "$port" -t "$arch/check" -m ok -q 1 -r || fail "mosquitto_pub to the $arch broker"
[ "$(mosquitto_sub -h 127.0.0.1 -p "$port" -t "$arch/check" -C 1 -W 10)" = ok ] || fail "mosquitto_sub"
echo "ok: the $arch broker runs under $qemu and serves mosquitto_pub/sub"
