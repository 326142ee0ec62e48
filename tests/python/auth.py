#!/usr/bin/env python3
"""User name and password login with paho-mqtt 2.x against a broker with allow_anonymous = false.

Usage: python3 auth.py PORT PROTOCOL USER PASSWORD   (PROTOCOL is 311 or 5)
The right password connects and round-trips a QoS 1 message; a wrong password is refused with
"Bad user name or password"; no credentials are refused with "Not authorized".
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import queue
import sys
import threading
import time

import paho.mqtt.client as mqtt

PROTOCOLS = {"311": mqtt.MQTTv311, "5": mqtt.MQTTv5}
TIMEOUT = 5


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def client(client_id, protocol, user, password):
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=PROTOCOLS[protocol],
    )
    if user is not None:
        c.username_pw_set(user, password)
    return c


def connack(port, client_id, protocol, user, password):
    """Connects without a background thread (so paho never retries); returns the CONNACK
    reason code's name and the client."""
    c = client(client_id, protocol, user, password)
    result = []
    c.on_connect = lambda _c, _u, _f, reason_code, _p: result.append(str(reason_code))
    c.connect("127.0.0.1", port, keepalive=30)
    deadline = time.monotonic() + TIMEOUT
    while not result and time.monotonic() < deadline:
        c.loop(timeout=0.05)
    if not result:
        fail(f"{client_id}: no CONNACK")
    return result[0], c


def main():
    port, protocol, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

    reason, _ = connack(port, f"paho-wrong-{protocol}", protocol, user, password + "x")
    if reason != "Bad user name or password":
        fail(f"wrong password answered {reason!r}")
    reason, _ = connack(port, f"paho-anon-{protocol}", protocol, None, None)
    if reason != "Not authorized":
        fail(f"anonymous login answered {reason!r}")

    reason, c = connack(port, f"paho-user-{protocol}", protocol, user, password)
    if reason != "Success":
        fail(f"right password answered {reason!r}")
    received = queue.Queue()
    subscribed = threading.Event()
    c.on_message = lambda _c, _u, message: received.put(message)
    c.on_subscribe = lambda *_args: subscribed.set()
    c.loop_start()
    c.subscribe("paho/auth", 1)
    if not subscribed.wait(TIMEOUT):
        fail("no SUBACK")
    info = c.publish("paho/auth", b"logged in", qos=1)
    info.wait_for_publish(TIMEOUT)
    if not info.is_published():
        fail("publish not acknowledged")
    try:
        message = received.get(timeout=TIMEOUT)
    except queue.Empty:
        fail("own message not delivered")
    if message.payload != b"logged in":
        fail(f"got {message.payload!r}")
    c.disconnect()
    c.loop_stop()
    print("OK")


if __name__ == "__main__":
    main()
