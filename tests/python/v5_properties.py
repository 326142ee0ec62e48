#!/usr/bin/env python3
"""MQTT 5 specifics with paho-mqtt 2.x: assigned client identifier, CONNACK limits, and
PUBLISH properties forwarded to subscribers unaltered.

Usage: python3 v5_properties.py PORT
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import queue
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TIMEOUT = 5


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def connect(port, client_id):
    """Returns (client, CONNACK properties)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    connected = threading.Event()
    connack = {}

    def on_connect(_client, _userdata, _flags, reason_code, properties):
        if not reason_code.is_failure:
            connack["properties"] = properties
            connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(TIMEOUT):
        fail(f"{client_id!r}: no successful CONNACK")
    return client, connack["properties"]


def main():
    port = int(sys.argv[1])
    anonymous, props = connect(port, "")
    assigned = getattr(props, "AssignedClientIdentifier", None)
    if not assigned:
        fail(f"no Assigned Client Identifier for an empty client id: {props}")
    for name in ("ReceiveMaximum", "TopicAliasMaximum", "MaximumPacketSize"):
        if getattr(props, name, None) is None:
            fail(f"CONNACK does not advertise {name}: {props}")

    received = queue.Queue()
    sub, _ = connect(port, "paho-v5-sub")
    sub.on_message = lambda _c, _u, message: received.put(message)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_args: subscribed.set()
    sub.subscribe("paho/v5/#", 1)
    if not subscribed.wait(TIMEOUT):
        fail("no SUBACK")

    sent = Properties(PacketTypes.PUBLISH)
    sent.PayloadFormatIndicator = 1
    sent.ContentType = "text/plain"
    sent.ResponseTopic = "paho/v5/reply"
    sent.CorrelationData = b"\x01\x02"
    sent.UserProperty = [("k", "v"), ("k", "second")]
    info = anonymous.publish("paho/v5/props", b"with properties", qos=1, properties=sent)
    info.wait_for_publish(TIMEOUT)
    try:
        message = received.get(timeout=TIMEOUT)
    except queue.Empty:
        fail("message with properties not delivered")
    got = message.properties
    checks = {
        "PayloadFormatIndicator": 1,
        "ContentType": "text/plain",
        "ResponseTopic": "paho/v5/reply",
        "CorrelationData": b"\x01\x02",
        "UserProperty": [("k", "v"), ("k", "second")],
    }
    for name, expected in checks.items():
        if getattr(got, name, None) != expected:
            fail(f"{name} forwarded as {getattr(got, name, None)!r}, expected {expected!r}")

    for client in (anonymous, sub):
        client.disconnect()
        client.loop_stop()
    print("OK")


if __name__ == "__main__":
    main()
