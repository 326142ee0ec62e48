#!/usr/bin/env python3
"""MQTT 5 specifics with paho-mqtt 2.x: assigned client identifier, CONNACK limits, and
PUBLISH properties forwarded to subscribers unaltered.

Usage: python3 v5_properties.py PORT
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from paho_common import TIMEOUT, connect, disconnect_all, fail, next_message, receive_into_queue
from paho_common import subscribe


def main():
    port = int(sys.argv[1])
    anonymous = connect(port, "", "5")
    props = anonymous.connack_properties
    assigned = getattr(props, "AssignedClientIdentifier", None)
    if not assigned:
        fail(f"no Assigned Client Identifier for an empty client id: {props}")
    for name in ("ReceiveMaximum", "TopicAliasMaximum", "MaximumPacketSize"):
        if getattr(props, name, None) is None:
            fail(f"CONNACK does not advertise {name}: {props}")

    sub = connect(port, "paho-v5-sub", "5")
    received = receive_into_queue(sub)
    subscribe(sub, "paho/v5/#", 1)

    sent = Properties(PacketTypes.PUBLISH)
    sent.PayloadFormatIndicator = 1
    sent.ContentType = "text/plain"
    sent.ResponseTopic = "paho/v5/reply"
    sent.CorrelationData = b"\x01\x02"
    sent.UserProperty = [("k", "v"), ("k", "second")]
    info = anonymous.publish("paho/v5/props", b"with properties", qos=1, properties=sent)
    info.wait_for_publish(TIMEOUT)
    message = next_message(received, "message with properties not delivered")
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

    disconnect_all(anonymous, sub)
    print("OK")


if __name__ == "__main__":
    main()
