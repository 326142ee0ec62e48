#!/usr/bin/env python3
"""QoS 0/1/2 publish/subscribe round trip with paho-mqtt 2.x.

Usage: python3 pubsub.py PORT SUB_PROTOCOL PUB_PROTOCOL   (each protocol is 311 or 5)
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

    def on_connect(_client, _userdata, _flags, reason_code, _properties):
        if not reason_code.is_failure:
            connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(TIMEOUT):
        fail(f"{client_id}: no successful CONNACK")
    return client


def subscribe(client, topic, qos):
    done = threading.Event()
    granted = []

    def on_subscribe(_client, _userdata, _mid, reason_codes, _properties):
        granted.extend(rc.value for rc in reason_codes)
        done.set()

    client.on_subscribe = on_subscribe
    client.subscribe(topic, qos)
    if not done.wait(TIMEOUT):
        fail(f"no SUBACK for {topic}")
    return granted


def main():
    port, sub_protocol, pub_protocol = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    received = queue.Queue()
    sub = connect(port, f"paho-sub-{sub_protocol}", sub_protocol)
    sub.on_message = lambda _c, _u, message: received.put(message)
    granted = subscribe(sub, "paho/#", 2)
    if granted != [2]:
        fail(f"granted QoS {granted}, expected [2]")

    pub = connect(port, f"paho-pub-{pub_protocol}", pub_protocol)
    for qos in (0, 1, 2):
        topic, payload = f"paho/q{qos}", f"hello at qos {qos}".encode()
        info = pub.publish(topic, payload, qos=qos)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            fail(f"QoS {qos} publish not acknowledged")
        try:
            message = received.get(timeout=TIMEOUT)
        except queue.Empty:
            fail(f"QoS {qos} message not delivered")
        if (message.topic, message.payload, message.qos, message.retain) != (topic, payload, qos, False):
            fail(f"got {(message.topic, message.payload, message.qos, message.retain)} for QoS {qos}")

    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    print("OK")


if __name__ == "__main__":
    main()
