#!/usr/bin/env python3
"""A paho-mqtt 2.x MQTT 5 publisher with a window of its own (paho ignores the broker's
Receive Maximum) sends a burst of QoS 1 messages: it must never be disconnected, and a QoS 1
subscriber must get every message once, in order.

Usage: python3 window.py PORT MESSAGES WINDOW
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys
import threading
import time

from paho_common import connect, disconnect_all, fail, subscribe

# Within the 120 s tests/paho.rs allows the script.
DEADLINE = 110


def main():
    port, messages, window = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sub = connect(port, "paho-window-sub", "5")
    got = []
    all_in = threading.Event()

    def on_message(_client, _userdata, message):
        got.append(int(message.payload))
        if len(got) == messages:
            all_in.set()

    sub.on_message = on_message
    if subscribe(sub, "window/t", 1) != [1]:
        fail("subscription not granted at QoS 1")

    pub = connect(port, "paho-window-pub", "5", max_inflight=window)
    disconnects = []
    pub.on_disconnect = lambda _c, _u, _f, reason_code, _p: disconnects.append(reason_code)
    infos = [pub.publish("window/t", str(n), qos=1) for n in range(messages)]

    deadline = time.monotonic() + DEADLINE
    for info in infos:
        info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        if disconnects:
            fail(f"publisher disconnected: {disconnects[0]}")
        if not info.is_published():
            fail(f"message {info.mid} not acknowledged within {DEADLINE} s")
    if not all_in.wait(max(0.0, deadline - time.monotonic())):
        fail(f"subscriber got {len(got)} of {messages} messages")
    if got != list(range(messages)):
        fail("messages missing, repeated or out of order")
    if disconnects:
        fail(f"publisher disconnected: {disconnects[0]}")
    disconnect_all(pub, sub)
    print("OK")


if __name__ == "__main__":
    main()
