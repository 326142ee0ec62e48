#!/usr/bin/env python3
"""Will message with paho-mqtt 2.x: published when the socket drops, not after DISCONNECT.

Usage: python3 will.py PORT PROTOCOL   (311 or 5)
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


def new_client(client_id, protocol):
    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=PROTOCOLS[protocol],
    )


def connect_without_loop(client, port):
    """Connects driving the network loop by hand, so the socket can later be dropped."""
    connected = threading.Event()
    client.on_connect = lambda _c, _u, _f, rc, _p: None if rc.is_failure else connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    deadline = time.monotonic() + TIMEOUT
    while not connected.is_set():
        if time.monotonic() > deadline:
            fail("no successful CONNACK")
        client.loop(timeout=0.1)


def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    received = queue.Queue()
    observer = new_client(f"paho-will-obs-{protocol}", protocol)
    observer.on_message = lambda _c, _u, message: received.put(message)
    connect_without_loop(observer, port)
    observer.loop_start()
    subscribed = threading.Event()
    observer.on_subscribe = lambda *_args: subscribed.set()
    observer.subscribe("paho/will/#", 1)
    if not subscribed.wait(TIMEOUT):
        fail("no SUBACK")

    polite = new_client(f"paho-will-polite-{protocol}", protocol)
    polite.will_set("paho/will/polite", b"should not appear", qos=1)
    connect_without_loop(polite, port)
    polite.disconnect()
    polite.loop(timeout=0.1)

    dying = new_client(f"paho-will-dying-{protocol}", protocol)
    dying.will_set("paho/will/dying", b"gone", qos=1)
    connect_without_loop(dying, port)
    dying.socket().close()  # no DISCONNECT: an abnormal end

    try:
        message = received.get(timeout=TIMEOUT)
    except queue.Empty:
        fail("will not published after the socket dropped")
    if (message.topic, message.payload) != ("paho/will/dying", b"gone"):
        fail(f"first message was {message.topic} {message.payload!r}: the polite client's will leaked")

    observer.disconnect()
    observer.loop_stop()
    print("OK")


if __name__ == "__main__":
    main()
