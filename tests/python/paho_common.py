"""Helpers shared by the paho-mqtt 2.x interoperability scripts in this folder.

The scripts are run by path (`python3 tests/python/X.py ...`), so this folder is on sys.path and
`from paho_common import ...` works without installing anything.
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


def new_client(client_id, protocol, user=None, password=None, transport="tcp"):
    """A paho client for PROTOCOLS[protocol] ("311" or "5"), with credentials when user is set;
    transport="websockets" speaks MQTT over WebSocket (path /mqtt, subprotocol mqtt)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=PROTOCOLS[protocol],
        transport=transport,
    )
    if user is not None:
        client.username_pw_set(user, password)
    return client


def connect(port, client_id, protocol, transport="tcp", max_inflight=None):
    """Connects with paho's background loop and returns the client once a successful CONNACK has
    arrived; the CONNACK's properties are kept in client.connack_properties. max_inflight sets
    paho's own window of unacknowledged QoS 1/2 publishes (20 unless set)."""
    client = new_client(client_id, protocol, transport=transport)
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    connected = threading.Event()

    def on_connect(_client, _userdata, _flags, reason_code, properties):
        if not reason_code.is_failure:
            client.connack_properties = properties
            connected.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    if not connected.wait(TIMEOUT):
        fail(f"{client_id!r}: no successful CONNACK")
    return client


def connect_by_hand(client, port, label):
    """Connects driving the network loop by hand (no background thread, so paho never retries and
    the socket can later be dropped); returns the CONNACK reason code."""
    result = []
    client.on_connect = lambda _c, _u, _f, reason_code, _p: result.append(reason_code)
    client.connect("127.0.0.1", port, keepalive=30)
    deadline = time.monotonic() + TIMEOUT
    while not result and time.monotonic() < deadline:
        client.loop(timeout=0.05)
    if not result:
        fail(f"{label}: no CONNACK")
    return result[0]


def receive_into_queue(client):
    """Returns a queue that gets every message the client receives."""
    received = queue.Queue()
    client.on_message = lambda _c, _u, message: received.put(message)
    return received


def next_message(received, failure):
    """The next message from a receive_into_queue() queue, or FAIL: failure after TIMEOUT."""
    try:
        return received.get(timeout=TIMEOUT)
    except queue.Empty:
        fail(failure)


def subscribe(client, topic, qos):
    """Subscribes, waits for the SUBACK and returns the granted reason code values."""
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


def publish_acknowledged(client, topic, payload, qos, retain=False):
    """Publishes and fails unless paho reports the publish as acknowledged within TIMEOUT."""
    info = client.publish(topic, payload, qos=qos, retain=retain)
    info.wait_for_publish(TIMEOUT)
    if not info.is_published():
        fail(f"QoS {qos} publish to {topic} not acknowledged")


def disconnect_all(*clients):
    for client in clients:
        client.disconnect()
        client.loop_stop()
