#!/usr/bin/env python3
"""User name and password login with paho-mqtt 2.x against a broker with allow_anonymous = false.

Usage: python3 auth.py PORT PROTOCOL USER PASSWORD   (PROTOCOL is 311 or 5)
The right password connects and round-trips a QoS 1 message; a wrong password is refused with
"Bad user name or password"; no credentials are refused with "Not authorized".
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys

from paho_common import connect_by_hand, disconnect_all, fail, new_client, next_message
from paho_common import publish_acknowledged, receive_into_queue, subscribe


def connack(port, client_id, protocol, user, password):
    """Connects without a background thread (so paho never retries); returns the CONNACK
    reason code's name and the client."""
    c = new_client(client_id, protocol, user, password)
    return str(connect_by_hand(c, port, client_id)), c


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
    received = receive_into_queue(c)
    c.loop_start()
    subscribe(c, "paho/auth", 1)
    publish_acknowledged(c, "paho/auth", b"logged in", 1)
    message = next_message(received, "own message not delivered")
    if message.payload != b"logged in":
        fail(f"got {message.payload!r}")
    disconnect_all(c)
    print("OK")


if __name__ == "__main__":
    main()
