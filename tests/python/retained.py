#!/usr/bin/env python3
"""Retained messages with paho-mqtt 2.x: set, deliver on subscribe with the retain flag, clear.

Usage: python3 retained.py PORT PROTOCOL   (311 or 5)
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import queue
import sys
import threading

import paho.mqtt.client as mqtt

PROTOCOLS = {"311": mqtt.MQTTv311, "5": mqtt.MQTTv5}
TIMEOUT = 5


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def connect(port, client_id, protocol):
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=PROTOCOLS[protocol],
    )
    connected = threading.Event()
    client.on_connect = lambda _c, _u, _f, rc, _p: None if rc.is_failure else connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(TIMEOUT):
        fail(f"{client_id}: no successful CONNACK")
    return client


def subscriber(port, client_id, protocol, topic):
    """Connects, subscribes at QoS 1 and returns (client, queue of received messages)."""
    received = queue.Queue()
    client = connect(port, client_id, protocol)
    client.on_message = lambda _c, _u, message: received.put(message)
    done = threading.Event()
    client.on_subscribe = lambda *_args: done.set()
    client.subscribe(topic, 1)
    if not done.wait(TIMEOUT):
        fail("no SUBACK")
    return client, received


def publish(client, topic, payload, retain):
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(TIMEOUT)
    if not info.is_published():
        fail(f"publish to {topic} not acknowledged")


def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    pub = connect(port, f"paho-ret-pub-{protocol}", protocol)
    publish(pub, "paho/ret", b"kept", retain=True)

    first, received = subscriber(port, f"paho-ret-sub1-{protocol}", protocol, "paho/ret")
    try:
        message = received.get(timeout=TIMEOUT)
    except queue.Empty:
        fail("retained message not delivered on subscribe")
    if (message.payload, message.retain) != (b"kept", True):
        fail(f"on subscribe got payload {message.payload!r} retain {message.retain}")

    publish(pub, "paho/ret", b"", retain=True)  # clears the retained message
    second, received = subscriber(port, f"paho-ret-sub2-{protocol}", protocol, "paho/ret")
    publish(pub, "paho/ret", b"live", retain=False)
    try:
        message = received.get(timeout=TIMEOUT)
    except queue.Empty:
        fail("live message not delivered")
    if (message.payload, message.retain) != (b"live", False):
        fail(f"after clearing, first message was {message.payload!r} retain {message.retain}")

    for client in (pub, first, second):
        client.disconnect()
        client.loop_stop()
    print("OK")


if __name__ == "__main__":
    main()
