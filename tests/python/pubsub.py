#!/usr/bin/env python3
"""QoS 0/1/2 publish/subscribe round trip with paho-mqtt 2.x.

Usage: python3 pubsub.py PORT SUB_PROTOCOL PUB_PROTOCOL   (each protocol is 311 or 5)
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys

from paho_common import connect, disconnect_all, fail, next_message, publish_acknowledged
from paho_common import receive_into_queue, subscribe


def main():
    port, sub_protocol, pub_protocol = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sub = connect(port, f"paho-sub-{sub_protocol}", sub_protocol)
    received = receive_into_queue(sub)
    granted = subscribe(sub, "paho/#", 2)
    if granted != [2]:
        fail(f"granted QoS {granted}, expected [2]")

    pub = connect(port, f"paho-pub-{pub_protocol}", pub_protocol)
    for qos in (0, 1, 2):
        topic, payload = f"paho/q{qos}", f"hello at qos {qos}".encode()
        publish_acknowledged(pub, topic, payload, qos)
        message = next_message(received, f"QoS {qos} message not delivered")
        if (message.topic, message.payload, message.qos, message.retain) != (topic, payload, qos, False):
            fail(f"got {(message.topic, message.payload, message.qos, message.retain)} for QoS {qos}")

    disconnect_all(pub, sub)
    print("OK")


if __name__ == "__main__":
    main()
