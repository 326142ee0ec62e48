#!/usr/bin/env python3
"""Retained messages with paho-mqtt 2.x: set, deliver on subscribe with the retain flag, clear.

Usage: python3 retained.py PORT PROTOCOL   (311 or 5)
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys

from paho_common import connect, disconnect_all, fail, next_message, publish_acknowledged
from paho_common import receive_into_queue, subscribe


def subscriber(port, client_id, protocol, topic):
    """Connects, subscribes at QoS 1 and returns (client, queue of received messages)."""
    client = connect(port, client_id, protocol)
    received = receive_into_queue(client)
    subscribe(client, topic, 1)
    return client, received


def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    pub = connect(port, f"paho-ret-pub-{protocol}", protocol)
    publish_acknowledged(pub, "paho/ret", b"kept", 1, retain=True)

    first, received = subscriber(port, f"paho-ret-sub1-{protocol}", protocol, "paho/ret")
    message = next_message(received, "retained message not delivered on subscribe")
    if (message.payload, message.retain) != (b"kept", True):
        fail(f"on subscribe got payload {message.payload!r} retain {message.retain}")

    publish_acknowledged(pub, "paho/ret", b"", 1, retain=True)  # clears the retained message
    second, received = subscriber(port, f"paho-ret-sub2-{protocol}", protocol, "paho/ret")
    publish_acknowledged(pub, "paho/ret", b"live", 1, retain=False)
    message = next_message(received, "live message not delivered")
    if (message.payload, message.retain) != (b"live", False):
        fail(f"after clearing, first message was {message.payload!r} retain {message.retain}")

    disconnect_all(pub, first, second)
    print("OK")


if __name__ == "__main__":
    main()
