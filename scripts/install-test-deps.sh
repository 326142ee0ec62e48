#!/usr/bin/env bash
# Installs what `make test` needs besides the Rust toolchain: mosquitto_pub and
# mosquitto_sub (interop tests), the mosquitto broker (the bridge's upstream in
# tests/bridge.rs), openssl (the TLS tests' certificates), paho-mqtt 2.x for Python
# (conformance scripts), chromium, node and npm with playwright-core in tests/browser
# (the web console's browser test) and MQTT.js with puppeteer-core in tests/js
# (WebSocket tests; both drive Debian's chromium, neither downloads a browser),
# plus the rustfmt and clippy components. Idempotent: when
# everything is present it changes nothing. Meant for a fresh Debian or Ubuntu
# machine run as root; as another user it only says what is missing.
set -euo pipefail

say() { printf 'install-test-deps: %s\n' "$*" >&2; }

have_mosquitto() {
    local tool
    for tool in mosquitto_pub mosquitto_sub; do
        [ -x "$(command -v "$tool")" ] || return 1
    done
}

have_mosquitto_broker() {
    [ -x /usr/sbin/mosquitto ]
}

have_paho() {
    command -v python3 >/dev/null 2>&1 || return 1
    python3 - <<'PY' >/dev/null 2>&1
import sys
import paho.mqtt
sys.exit(0 if int(paho.mqtt.__version__.split(".")[0]) >= 2 else 1)
PY
}

have_chromium() {
    [ -x /usr/bin/chromium ]
}

have_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
}

# playwright-core as pinned by tests/browser/package-lock.json.
have_playwright() {
    [ -f tests/browser/node_modules/playwright-core/package.json ]
}

# MQTT.js and puppeteer-core as pinned by tests/js/package-lock.json.
have_mqtt_js() {
    [ -f tests/js/node_modules/mqtt/package.json ] &&
        [ -f tests/js/node_modules/puppeteer-core/package.json ]
}

have_pip() {
    command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1
}

# --- Rust components: rustup works without root -------------------------------
for component in rustfmt clippy; do
    if [ "$component" = rustfmt ]; then probe=(cargo fmt --version); else probe=(cargo clippy --version); fi
    if ! "${probe[@]}" >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            say "adding rust component $component"
            rustup component add "$component"
        else
            say "missing: $component (install it with: rustup component add $component)"
            exit 1
        fi
    fi
done

# --- System and Python packages -------------------------------------------------
apt_packages=()
have_mosquitto || apt_packages+=(mosquitto-clients)
have_mosquitto_broker || apt_packages+=(mosquitto)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
have_chromium || apt_packages+=(chromium)
have_node || apt_packages+=(nodejs npm)
need_paho=0
if ! have_paho; then
    need_paho=1
    command -v python3 >/dev/null 2>&1 || apt_packages+=(python3)
    have_pip || apt_packages+=(python3-pip)
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# npm ci needs no root: do it before the early exit below.
install_playwright() {
    if ! have_playwright && have_node; then
        say "installing playwright-core in tests/browser (npm ci)"
        (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
    fi
    if ! have_mqtt_js && have_node; then
        say "installing MQTT.js and puppeteer-core in tests/js (npm ci)"
        (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

if [ ${#apt_packages[@]} -eq 0 ] && [ "$need_paho" -eq 0 ]; then
    install_playwright
    have_playwright || { say "playwright-core still missing in tests/browser"; exit 1; }
    have_mqtt_js || { say "MQTT.js or puppeteer-core still missing in tests/js"; exit 1; }
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    [ ${#apt_packages[@]} -gt 0 ] && say "missing: apt-get install -y ${apt_packages[*]}"
    [ "$need_paho" -eq 1 ] && say "missing: python3 -m pip install 'paho-mqtt>=2,<3'"
    say "run this script as root, or install the above yourself"
    exit 1
fi

if [ ${#apt_packages[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { say "no apt-get; install ${apt_packages[*]} yourself"; exit 1; }
    say "installing ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

if [ "$need_paho" -eq 1 ]; then
    say "installing paho-mqtt 2.x"
    # Debian 12+ marks the system Python as externally managed and pip
    # refuses; the test machine is disposable, so tell pip we mean it.
    if ! out=$(python3 -m pip install --quiet 'paho-mqtt>=2,<3' 2>&1); then
        if [[ $out == *externally-managed-environment* ]]; then
            python3 -m pip install --quiet --break-system-packages 'paho-mqtt>=2,<3'
        else
            printf '%s\n' "$out" >&2
            exit 1
        fi
    fi
fi

install_playwright

have_mosquitto || { say "mosquitto_pub/mosquitto_sub still missing"; exit 1; }
have_mosquitto_broker || { say "/usr/sbin/mosquitto still missing"; exit 1; }
have_chromium || { say "chromium still missing"; exit 1; }
have_playwright || { say "playwright-core still missing in tests/browser"; exit 1; }
have_mqtt_js || { say "MQTT.js or puppeteer-core still missing in tests/js"; exit 1; }
have_paho || { say "paho-mqtt 2.x still not importable by python3"; exit 1; }
say "ok: mosquitto clients, chromium, playwright-core, MQTT.js, puppeteer-core and paho-mqtt $(python3 -c 'import paho.mqtt; print(paho.mqtt.__version__)')"
