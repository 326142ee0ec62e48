#!/usr/bin/env bash
# Installs what `make test` needs besides the Rust toolchain: mosquitto_pub and
# mosquitto_sub (interop tests), the mosquitto broker (the bridge's upstream in
# tests/bridge.rs), openssl (the TLS tests' certificates), curl (the web login-limit and
# HTTPS tests), paho-mqtt 2.x for Python
# (conformance scripts), chromium, node and npm with playwright-core in tests/browser
# (the web console's browser test) and MQTT.js with puppeteer-core in tests/js
# (WebSocket tests; both drive Debian's chromium, neither downloads a browser).
# Rust with rustfmt and clippy is scripts/install-build-deps.sh's job (`make test`
# runs it first). Idempotent: when
# everything is present it changes nothing. Meant for a fresh Debian or Ubuntu
# machine run as root; as another user it only says what is missing.
#
# Versions, not only presence: Node 18 or newer (Debian 12 and Ubuntu 24.04 ship 18,
# and the npm packages are pinned to releases that support it: playwright-core 1.61,
# puppeteer-core 24, MQTT.js 5), the exact npm versions package.json pins (a stale
# node_modules is reinstalled with `npm ci`), paho-mqtt 2.x. It says what it found and
# what it installs.
set -euo pipefail

say() { printf 'install-test-deps: %s\n' "$*" >&2; }

# The oldest Node the pinned test packages run on (README, "Test requirements").
NODE_MIN=18

node_major() {
    node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

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

# Ubuntu's `chromium` package is only a wrapper around a snap, which neither installs nor
# runs without snapd (containers, chroots, CI images). There the tests use the headless
# Chromium that the npm package @sparticuz/chromium carries (it needs only NSS and expat
# from apt), copied to /opt/outpost-test-chromium/chromium and linked as /usr/bin/chromium.
# It is a headless-shell build: there `Notification.permission` reads "denied" even when the
# test grants notifications (navigator.permissions.query says "granted"); Debian's 156 says
# "granted". A test must not rely on the real permission there.
CHROMIUM_NPM_DIR=/opt/outpost-test-chromium
CHROMIUM_NPM=@sparticuz/chromium@133.0.0
chromium_from_npm() {
    . /etc/os-release 2>/dev/null && [ "${ID:-}" = ubuntu ]
}

install_npm_chromium() {
    say "installing $CHROMIUM_NPM in $CHROMIUM_NPM_DIR (Ubuntu's chromium is a snap) as /usr/bin/chromium"
    npm install --prefix "$CHROMIUM_NPM_DIR" --no-audit --no-fund --loglevel=error "$CHROMIUM_NPM"
    # executablePath() unpacks the browser as /tmp/chromium (or returns one already there).
    local left=0 bin
    [ -e /tmp/chromium ] && left=1
    bin=$(cd "$CHROMIUM_NPM_DIR" && node -e \
        'require("@sparticuz/chromium").executablePath().then((p) => console.log(p))')
    install -m 755 "$bin" "$CHROMIUM_NPM_DIR/chromium"
    [ "$left" -eq 1 ] || rm -f "$bin"
    ln -sf "$CHROMIUM_NPM_DIR/chromium" /usr/bin/chromium
}

have_node() {
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1
}

# The version of npm package $2 that $1/package.json pins (exact versions there; the
# lock pins the rest).
pinned_version() {
    (cd "$1" && node -p "require('./package.json').dependencies['$2']" 2>/dev/null)
}

# The version of npm package $2 installed in $1/node_modules.
installed_version() {
    (cd "$1" && node -p "require('./node_modules/$2/package.json').version" 2>/dev/null)
}

have_pinned() {
    local pinned
    pinned=$(pinned_version "$1" "$2") || return 1
    [ "$(installed_version "$1" "$2" || true)" = "$pinned" ]
}

have_playwright() {
    have_pinned tests/browser playwright-core
}

have_mqtt_js() {
    have_pinned tests/js mqtt && have_pinned tests/js puppeteer-core
}

have_pip() {
    command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1
}

# --- System and Python packages -------------------------------------------------
apt_packages=()
have_mosquitto || apt_packages+=(mosquitto-clients)
have_mosquitto_broker || apt_packages+=(mosquitto)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
if ! have_chromium; then
    if chromium_from_npm; then apt_packages+=(libnss3 libnspr4 libexpat1 fonts-dejavu-core); else apt_packages+=(chromium); fi
fi
have_node || apt_packages+=(nodejs npm)
need_paho=0
if ! have_paho; then
    need_paho=1
    command -v python3 >/dev/null 2>&1 || apt_packages+=(python3)
    have_pip || apt_packages+=(python3-pip)
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A node that is there but too old: apt would not bring a newer one, so say what to do.
check_node_version() {
    have_node || return 0
    if [ "$(node_major)" -lt "$NODE_MIN" ]; then
        say "node $(node --version) is older than $NODE_MIN, which the browser and WebSocket tests need;"
        say "install Node $NODE_MIN or newer (the nodejs package of Debian 12 or Ubuntu 24.04 is 18)"
        exit 1
    fi
}

# npm ci needs no root: do it before the early exit below.
install_playwright() {
    check_node_version
    if ! have_playwright && have_node; then
        say "installing playwright-core $(pinned_version tests/browser playwright-core) in tests/browser (npm ci)"
        (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
    fi
    if ! have_mqtt_js && have_node; then
        say "installing MQTT.js $(pinned_version tests/js mqtt) and puppeteer-core $(pinned_version tests/js puppeteer-core) in tests/js (npm ci)"
        (cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
    fi
}

# One line with what the tests will run against.
report() {
    say "ok: node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | awk '{print $1, $2}'), playwright-core $(installed_version tests/browser playwright-core), MQTT.js $(installed_version tests/js mqtt), puppeteer-core $(installed_version tests/js puppeteer-core), paho-mqtt $(python3 -c 'import paho.mqtt; print(paho.mqtt.__version__)')"
}

if [ ${#apt_packages[@]} -eq 0 ] && [ "$need_paho" -eq 0 ]; then
    install_playwright
    have_playwright || { say "playwright-core still missing in tests/browser"; exit 1; }
    have_mqtt_js || { say "MQTT.js or puppeteer-core still missing in tests/js"; exit 1; }
    report
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
if ! have_chromium && chromium_from_npm; then install_npm_chromium; fi

have_mosquitto || { say "mosquitto_pub/mosquitto_sub still missing"; exit 1; }
have_mosquitto_broker || { say "/usr/sbin/mosquitto still missing"; exit 1; }
have_chromium || { say "chromium still missing"; exit 1; }
command -v curl >/dev/null 2>&1 || { say "curl still missing"; exit 1; }
have_playwright || { say "playwright-core still missing in tests/browser"; exit 1; }
have_mqtt_js || { say "MQTT.js or puppeteer-core still missing in tests/js"; exit 1; }
have_paho || { say "paho-mqtt 2.x still not importable by python3"; exit 1; }
report
