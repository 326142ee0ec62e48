#!/usr/bin/env python3
"""Will message with paho-mqtt 2.x: published when the socket drops, not after DISCONNECT.

Usage: python3 will.py PORT PROTOCOL   (311 or 5)
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys

from paho_common import connect_by_hand, disconnect_all, fail, new_client, next_message
from paho_common import receive_into_queue, subscribe


def connect_without_loop(client_id, protocol, port, will_topic=None, will_payload=None):
    """Connects driving the network loop by hand, so the socket can later be dropped."""
    client = new_client(client_id, protocol)
    if will_topic is not None:
        client.will_set(will_topic, will_payload, qos=1)
    if connect_by_hand(client, port, client_id).is_failure:
        fail(f"{client_id}: no successful CONNACK")
    return client


def main():
    port, protocol = int(sys.argv[1]), sys.argv[2]
    observer = connect_without_loop(f"paho-will-obs-{protocol}", protocol, port)
    received = receive_into_queue(observer)
    observer.loop_start()
    subscribe(observer, "paho/will/#", 1)

    polite = connect_without_loop(
        f"paho-will-polite-{protocol}", protocol, port, "paho/will/polite", b"should not appear"
    )
    polite.disconnect()
    polite.loop(timeout=0.1)

    dying = connect_without_loop(f"paho-will-dying-{protocol}", protocol, port, "paho/will/dying", b"gone")
    dying.socket().close()  # no DISCONNECT: an abnormal end

    message = next_message(received, "will not published after the socket dropped")
    if (message.topic, message.payload) != ("paho/will/dying", b"gone"):
        fail(f"first message was {message.topic} {message.payload!r}: the polite client's will leaked")

    disconnect_all(observer)
    print("OK")


if __name__ == "__main__":
    main()
