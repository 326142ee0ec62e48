#!/usr/bin/env bash
# `make deb-check`: installs the package built by `make deb` on this machine and checks
# what an operator gets, then purges it. Needs root on Debian (it really installs).
#
#  1. dpkg -i: files, modes and owners, the conffile, the outpost system user, the state
#     directory, the unit (hardening directives, enabled at boot, systemd-analyze verify).
#  2. The broker run as the unit would run it: same user and group, no capabilities, no
#     new privileges, same working directory, umask and command line. systemd is not PID 1
#     here, so `systemctl start` cannot be used; the sandbox directives themselves
#     (ProtectSystem=...) are checked by systemd-analyze, not exercised.
#     First admin, mosquitto_pub/mosquitto_sub with and without a password, backup while it
#     runs, SIGHUP, graceful SIGTERM.
#  3. Upgrades: the same package again and one with a higher revision; the database, the
#     edited config, the user and the data served all survive. A database from a newer
#     Outpost is refused with one clear line.
#  4. dpkg --purge: everything goes but the system user (Debian keeps those).
#
# An outpost package installed by anything but this script is never touched: the script
# refuses to run instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONF=/etc/outpost/outpost.toml
STATE=/var/lib/outpost
UNIT=/usr/lib/systemd/system/outpost.service
WANTS=/etc/systemd/system/multi-user.target.wants/outpost.service
MARK=$STATE/.installed-by-deb-check
PASSWORD="deb-check-$$-$RANDOM"

passed=0
ok() {
    passed=$((passed + 1))
    echo "ok $passed: $*"
}
fail() {
    echo "FAIL: $*" >&2
    if [ -n "${LOG:-}" ] && [ -s "$LOG" ]; then
        echo "--- broker log ---" >&2
        cat "$LOG" >&2
    fi
    exit 1
}
# `same A B WHAT`: A must equal B.
same() {
    [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
    ok "$3"
}

[ "$(id -u)" = 0 ] || fail "deb-check installs a package: run it as root"
command -v dpkg >/dev/null || fail "deb-check needs dpkg (Debian or a derivative)"
arch=$(dpkg --print-architecture)
deb=$(ls -t target/debian/outpost_*_"$arch".deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "no target/debian/outpost_*_$arch.deb: run make deb first"
bash scripts/install-test-deps.sh >/dev/null

if dpkg-query -W -f='${Status}' outpost 2>/dev/null | grep -q ' installed$'; then
    [ -e "$MARK" ] || fail "an outpost package is installed, not by deb-check; refusing to touch it"
    dpkg --purge outpost >/dev/null
fi
[ ! -e "$STATE" ] || fail "$STATE exists without an outpost package; move it away first"

WORK=$(mktemp -d)
LOG=$WORK/broker.log
BROKER_PID=
cleanup() {
    if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; fi
    dpkg --purge outpost >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# Building the upgrade package below makes cargo-deb clear target/debian: work on a copy.
cp "$deb" "$WORK/"
deb=$WORK/$(basename "$deb")

# --- 1. Install -----------------------------------------------------------------------------
echo "deb-check: installing $deb"
dpkg -i "$deb" >/dev/null </dev/null
touch "$MARK"
ok "dpkg -i $(basename "$deb")"

# Stripped: no symbol table, no debug info (readelf comes with the C toolchain; `file`
# may not be installed).
if readelf -S --wide /usr/bin/outpost | grep -qE ' \.(symtab|debug_info|debug_line) '; then
    fail "/usr/bin/outpost is not stripped"
fi
ok "/usr/bin/outpost is stripped ($(stat -c %s /usr/bin/outpost) bytes)"
same "$(stat -c '%U:%G %a' /usr/bin/outpost)" "root:root 755" "/usr/bin/outpost owner and mode"
same "$(/usr/bin/outpost --version)" "outpost $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" "outpost --version"

IFS=: read -r _ _ uid gid _ home shell < <(getent passwd outpost) || fail "no outpost user"
[ "$uid" -lt 1000 ] || fail "outpost is not a system user (uid $uid)"
ok "outpost is a system user (uid $uid)"
same "$(getent group outpost | cut -d: -f3)" "$gid" "outpost's group is outpost"
same "$home" "$STATE" "outpost's home"
same "$shell" "/usr/sbin/nologin" "outpost's shell"

same "$(stat -c '%U:%G %a' "$STATE")" "outpost:outpost 750" "$STATE owner and mode"
same "$(stat -c '%U:%G %a' "$CONF")" "root:outpost 640" "$CONF owner and mode"
dpkg-query -W -f='${Conffiles}\n' outpost | grep -q "^ $CONF " || fail "$CONF is not a conffile"
ok "$CONF is a conffile"
grep -qx 'db = "/var/lib/outpost/outpost.db"' "$CONF" || fail "$CONF does not put the database in $STATE"
ok "$CONF puts the database in $STATE"
/usr/bin/outpost check-config "$CONF" >"$WORK/effective.toml" || fail "check-config $CONF"
grep -qx 'listen = \["127.0.0.1:1883"\]' "$WORK/effective.toml" || fail "the packaged listener is not loopback"
grep -qx 'ws_listen = \["127.0.0.1:8083"\]' "$WORK/effective.toml" ||
    fail "the packaged WebSocket listener is not loopback"
ok "outpost check-config $CONF passes; listens on loopback only"
for doc in README.md deploy.md config.md copyright examples/outpost.toml examples/low-ports.conf; do
    [ -s "/usr/share/doc/outpost/$doc" ] || fail "missing /usr/share/doc/outpost/$doc"
done
ok "docs in /usr/share/doc/outpost"

[ -f "$UNIT" ] || fail "no $UNIT"
for directive in 'User=outpost' 'ExecStart=/usr/bin/outpost --config /etc/outpost/outpost.toml' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'Restart=on-failure' 'StateDirectory=outpost' \
    'ProtectSystem=strict' 'ProtectHome=yes' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
    'CapabilityBoundingSet=' 'AmbientCapabilities='; do
    grep -qxF "$directive" "$UNIT" || fail "$UNIT lacks $directive"
done
ok "the unit has the hardening directives"
[ "$(readlink -f "$WANTS")" = "$(readlink -f "$UNIT")" ] || fail "the unit is not enabled at boot ($WANTS)"
ok "the unit is enabled for multi-user.target"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$UNIT" >"$WORK/verify" 2>&1 || { cat "$WORK/verify"; fail "systemd-analyze verify"; }
    [ ! -s "$WORK/verify" ] || { cat "$WORK/verify"; fail "systemd-analyze verify printed warnings"; }
    ok "systemd-analyze verify $UNIT"
    if systemd-analyze security --offline=true "$UNIT" >"$WORK/security" 2>&1; then
        echo "    $(grep 'Overall exposure level' "$WORK/security")"
    fi
else
    echo "skip: systemd-analyze is not installed"
fi

# Where systemd runs (not in this CI's containers), the postinst started the service: check
# it is up and serving, then stop it so the runs below own the database alone.
if [ -d /run/systemd/system ]; then
    systemctl is-active --quiet outpost || fail "systemd did not start outpost: $(systemctl status outpost)"
    mosquitto_pub -h 127.0.0.1 -p 1883 -i deb-systemd -t deb/systemd -m up -q 1 ||
        fail "the systemd service does not answer on 127.0.0.1:1883"
    ok "systemd runs the service and it answers mosquitto_pub"
    systemctl stop outpost
else
    echo "note: systemd is not PID 1 here; the service is run by hand as its unit says"
fi

# --- 2. Run it as the unit would ------------------------------------------------------------
unit_value() { sed -n "s/^$1=//p" "$UNIT" | head -n 1; }
user=$(unit_value User)
group=$(unit_value Group)
workdir=$(unit_value WorkingDirectory)
umask_value=$(unit_value UMask)
read -r -a exec_start <<<"$(unit_value ExecStart)"
port=1883
if (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
    # Someone already serves 1883 here: keep everything else as the unit has it.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    exec_start+=(--listen "127.0.0.1:$port")
    echo "note: 127.0.0.1:1883 is taken on this machine; the broker listens on $port instead"
fi
if (exec 3<>/dev/tcp/127.0.0.1/8083) 2>/dev/null; then
    exec_start+=(--ws-listen 127.0.0.1:0)
    echo "note: 127.0.0.1:8083 is taken on this machine; the WebSocket listener takes a free port"
fi

start_broker() {
    : >"$LOG"
    (cd "$workdir" && umask "$umask_value" &&
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs \
            --bounding-set=-all --inh-caps=-all "${exec_start[@]}") 2>>"$LOG" &
    BROKER_PID=$!
    for _ in $(seq 100); do
        grep -q "mqtt listener on 127.0.0.1:$port" "$LOG" && return 0
        kill -0 "$BROKER_PID" 2>/dev/null || fail "the broker exited at start"
        sleep 0.1
    done
    fail "no listener line within 10 s"
}
stop_broker() {
    kill -TERM "$BROKER_PID"
    local status=0
    wait "$BROKER_PID" || status=$?
    BROKER_PID=
    same "$status" 0 "SIGTERM stops the broker with exit status 0"
    grep -q 'stopped' "$LOG" || fail "no 'stopped' line after SIGTERM"
}
wait_log() {
    for _ in $(seq 100); do
        grep -q "$1" "$LOG" && return 0
        sleep 0.1
    done
    fail "no log line matching '$1'"
}

start_broker
ok "the broker runs as $user:$group without capabilities ($(cat /proc/$BROKER_PID/status | sed -n 's/^CapEff:\s*//p') effective)"
same "$(stat -c '%U' "/proc/$BROKER_PID")" "$user" "the broker process belongs to $user"
same "$(stat -c '%U:%G %a' "$STATE/outpost.db")" "outpost:outpost 640" "the new database's owner and mode"

# The first admin, as docs/deploy.md says (runuser: sudo may not be installed).
printf '%s\n' "$PASSWORD" | runuser -u outpost -- /usr/bin/outpost --config "$CONF" \
    user add admin --admin --password-stdin >/dev/null
runuser -u outpost -- /usr/bin/outpost --config "$CONF" user list | grep -q '^admin' ||
    fail "admin not in user list"
ok "first admin created as the outpost user while the broker runs"

mosquitto_pub -h 127.0.0.1 -p "$port" -i deb-anon -t deb/anon -m hi -q 1 ||
    fail "anonymous mosquitto_pub on loopback"
ok "mosquitto_pub without a user name on loopback"
mosquitto_pub -h 127.0.0.1 -p "$port" -i deb-admin -u admin -P "$PASSWORD" \
    -t deb/retained -m kept -q 1 -r || fail "mosquitto_pub as admin"
got=$(mosquitto_sub -h 127.0.0.1 -p "$port" -i deb-sub -u admin -P "$PASSWORD" \
    -t deb/retained -C 1 -W 10 -v) || fail "mosquitto_sub as admin"
same "$got" "deb/retained kept" "mosquitto_sub as admin gets the retained message"
if mosquitto_pub -h 127.0.0.1 -p "$port" -i deb-wrong -u admin -P wrong -t deb/x -m x \
    2>/dev/null; then
    fail "a wrong password was accepted"
fi
ok "a wrong password is refused"

# Root runs commands on the live database too; files must stay the broker's.
/usr/bin/outpost --config "$CONF" backup "$WORK/backup.db" >/dev/null
/usr/bin/outpost --db "$WORK/backup.db" user list | grep -q '^admin' || fail "admin not in the backup"
ok "outpost backup as root while the broker runs; the copy has the admin"
/usr/bin/outpost --config "$CONF" acl list >/dev/null
for f in "$STATE"/outpost.db*; do
    same "$(stat -c '%U:%G' "$f")" "outpost:outpost" "$f still belongs to outpost after root used it"
done

sed -i 's/^max_inflight = [0-9]*$/max_inflight = 32/' "$CONF"
grep -qx 'max_inflight = 32' "$CONF" || fail "could not edit $CONF"
kill -HUP "$BROKER_PID"
wait_log 'reload: applied max_inflight'
wait_log 'reload done'
ok "SIGHUP (systemctl reload) applies an edited $CONF"
stop_broker

# --- 3. Upgrades ----------------------------------------------------------------------------
version=$(dpkg-query -W -f='${Version}' outpost)
upstream=${version%-*}
revision=${version##*-}
mkdir "$WORK/bumped"
cargo deb --no-build --strip --deb-revision "$((revision + 1))" -o "$WORK/bumped/" >/dev/null
bumped=$(ls "$WORK"/bumped/outpost_*_"$arch".deb)
mkdir -p target/debian && cp "$deb" target/debian/ # what make deb built stays there
check_kept() {
    same "$(id -u outpost)" "$uid" "$1: the outpost user is unchanged"
    grep -qx 'max_inflight = 32' "$CONF" || fail "$1: the edited $CONF was replaced"
    ok "$1: the edited $CONF is kept"
    same "$(stat -c '%U:%G %a' "$CONF")" "root:outpost 640" "$1: $CONF owner and mode"
    runuser -u outpost -- /usr/bin/outpost --config "$CONF" user list | grep -q '^admin' ||
        fail "$1: the admin is gone"
    ok "$1: the database and its admin are kept"
}
for step in "reinstall $(basename "$deb")" "upgrade to $(basename "$bumped")"; do
    pkg=$deb
    [[ $step == upgrade* ]] && pkg=$bumped
    # What unattended upgrades do: keep a locally changed conffile, never ask.
    dpkg -i --force-confdef --force-confold "$pkg" >/dev/null </dev/null
    # Where systemd runs, the postinst restarted the service; the runs here need it stopped.
    if [ -d /run/systemd/system ]; then systemctl stop outpost; fi
    check_kept "$step"
done
same "$(dpkg-query -W -f='${Version}' outpost)" "$upstream-$((revision + 1))" "the upgraded version is installed"
[ "$(readlink -f "$WANTS")" = "$(readlink -f "$UNIT")" ] || fail "the upgrade disabled the unit"
ok "the unit is still enabled after the upgrade"
start_broker
got=$(mosquitto_sub -h 127.0.0.1 -p "$port" -i deb-sub2 -u admin -P "$PASSWORD" \
    -t deb/retained -C 1 -W 10 -v) || fail "mosquitto_sub after the upgrade"
same "$got" "deb/retained kept" "after the upgrade the broker serves the data from before"
stop_broker

cp "$STATE/outpost.db" "$WORK/future.db"
python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA user_version = 99"); c.commit()' \
    "$WORK/future.db"
status=0
/usr/bin/outpost --db "$WORK/future.db" --listen 127.0.0.1:0 --ws-listen off --http off \
    2>"$WORK/future.err" || status=$?
same "$status" 2 "a database from a newer Outpost: exit status 2"
grep -q 'schema version 99 is newer than this build knows' "$WORK/future.err" ||
    fail "no clear line for a newer database: $(cat "$WORK/future.err")"
ok "a database from a newer Outpost is refused with one clear line"

# --- 4. Purge -------------------------------------------------------------------------------
dpkg --purge outpost >/dev/null
for gone in /usr/bin/outpost "$UNIT" "$WANTS" /etc/outpost "$STATE" /usr/share/doc/outpost; do
    [ ! -e "$gone" ] && [ ! -L "$gone" ] || fail "$gone is still there after purge"
done
ok "dpkg --purge removes the binary, unit, config, data and docs"
getent passwd outpost >/dev/null && ok "the outpost system user stays after purge (Debian policy)"

echo "deb-check: $passed passed, 0 failed"
