#!/usr/bin/env bash
# Installs what building Outpost needs when it is missing: Rust 1.85 or newer (cargo
# and rustc; with `--test` also rustfmt and clippy, which `make test` runs) and a C
# compiler (SQLite and ring are C), plus the CA certificates cargo needs to fetch from
# crates.io. Nothing is changed when all of it is there.
#
# Where Rust comes from: rustup when it manages the toolchain (components added with
# it); otherwise the distribution's own packages, run as root:
#   Debian 12:     rustc-web, cargo-web, rustfmt-web, rust-web-clippy (bookworm's rustc
#                  is 1.63; the -web toolchain is Debian's newer one, kept for browsers)
#   Ubuntu 24.04:  the newest versioned toolchain, rustc-1.NN, cargo-1.NN, rustfmt-1.NN,
#                  rust-1.NN-clippy, linked into /usr/local/bin (noble's rustc is 1.75)
#   others:        rustc, cargo, rustfmt, rust-clippy when their version is new enough.
# As another user it only says what is missing.
set -euo pipefail

say() { printf 'install-build-deps: %s\n' "$*" >&2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The oldest Rust that builds Outpost: Cargo.toml's rust-version.
RUST_MIN=$(sed -n 's/^rust-version = "\([0-9.]*\)"$/\1/p' Cargo.toml)
[ -n "$RUST_MIN" ] || { say "no rust-version in Cargo.toml"; exit 1; }

with_tests=0
[ "${1:-}" = --test ] && with_tests=1

# True when version $1 (x.y[.z]) is at least version $2.
at_least() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

rust_version() {
    rustc --version 2>/dev/null | awk '{print $2}'
}

have_rust() {
    command -v cargo >/dev/null 2>&1 && command -v rustc >/dev/null 2>&1 &&
        at_least "$(rust_version)" "$RUST_MIN"
}

have_components() {
    [ "$with_tests" -eq 0 ] && return 0
    cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1
}

have_cc() {
    command -v cc >/dev/null 2>&1
}

# cargo on Debian and Ubuntu checks crates.io's certificate against the system bundle.
have_ca() {
    [ -s /etc/ssl/certs/ca-certificates.crt ]
}

if have_rust && have_components && have_cc; then
    exit 0
fi

# --- rustup: no root needed ------------------------------------------------------
if command -v rustup >/dev/null 2>&1 && have_cc; then
    if ! have_rust; then
        say "rust $(rust_version) is older than $RUST_MIN: run \`rustup update stable\`"
        exit 1
    fi
    for component in rustfmt clippy; do
        say "adding rust component $component"
        rustup component add "$component"
    done
    exit 0
fi

# --- the distribution's packages -------------------------------------------------
. /etc/os-release 2>/dev/null || true

# The version apt would install for package $1, without the epoch and revision.
candidate() {
    apt-cache policy "$1" 2>/dev/null |
        sed -n 's/^ *Candidate: \([0-9]*:\)\{0,1\}\([0-9][0-9.]*\).*/\2/p'
}

apt_packages=()
have_cc || apt_packages+=(gcc libc6-dev)
have_ca || apt_packages+=(ca-certificates)
ubuntu_rust=""

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    have_rust || say "missing: Rust $RUST_MIN or newer with cargo (rustup, or your distribution's packages)"
    have_components || say "missing: rustfmt and clippy for that toolchain"
    have_cc || say "missing: a C compiler (gcc)"
    have_ca || say "missing: CA certificates (ca-certificates)"
    say "run this script as root on Debian or Ubuntu, or install the above yourself"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "reading the package lists (apt-get update)"
apt-get update -qq

if ! have_rust || ! have_components; then
    if [ "${ID:-}" = ubuntu ]; then
        # The newest versioned toolchain the archive has, e.g. rustc-1.85.
        ubuntu_rust=$(apt-cache pkgnames rustc-1. | sed -n 's/^rustc-\(1\.[0-9]*\)$/\1/p' | sort -V | tail -n 1)
        if [ -z "$ubuntu_rust" ] || ! at_least "$ubuntu_rust" "$RUST_MIN"; then
            say "no rustc-1.NN package of $RUST_MIN or newer in this Ubuntu; install Rust with rustup"
            exit 1
        fi
        apt_packages+=("rustc-$ubuntu_rust" "cargo-$ubuntu_rust")
        [ "$with_tests" -eq 1 ] && apt_packages+=("rustfmt-$ubuntu_rust" "rust-$ubuntu_rust-clippy")
    elif [ -n "$(candidate rustc)" ] && at_least "$(candidate rustc)" "$RUST_MIN"; then
        apt_packages+=(rustc cargo)
        [ "$with_tests" -eq 1 ] && apt_packages+=(rustfmt rust-clippy)
    elif [ -n "$(candidate rustc-web)" ] && at_least "$(candidate rustc-web)" "$RUST_MIN"; then
        # Debian 12: rustc-web provides rustc and installs /usr/bin/rustc and cargo.
        apt_packages+=(rustc-web cargo-web)
        [ "$with_tests" -eq 1 ] && apt_packages+=(rustfmt-web rust-web-clippy)
    else
        say "this distribution has no Rust $RUST_MIN or newer (rustc $(candidate rustc)); install Rust with rustup"
        exit 1
    fi
fi

if [ ${#apt_packages[@]} -gt 0 ]; then
    say "installing ${apt_packages[*]}"
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

# Ubuntu installs the versioned toolchain under /usr/lib/rust-1.NN/bin: put its
# commands on the PATH under their usual names.
if [ -n "$ubuntu_rust" ]; then
    say "linking /usr/lib/rust-$ubuntu_rust/bin/* into /usr/local/bin"
    for tool in /usr/lib/rust-"$ubuntu_rust"/bin/*; do
        ln -sf "$tool" /usr/local/bin/"$(basename "$tool")"
    done
    hash -r
fi

have_rust || { say "rust $RUST_MIN or newer still missing (found: $(rust_version))"; exit 1; }
have_components || { say "rustfmt or clippy still missing"; exit 1; }
have_cc || { say "a C compiler is still missing"; exit 1; }
say "ok: $(rustc --version), $(cargo --version), $(cc --version | head -n 1)"
