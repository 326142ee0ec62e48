#!/usr/bin/env python3
"""MQTT over WebSocket with paho-mqtt 2.x (transport="websockets"), against TCP clients on the
same broker: QoS 0/1/2 both ways, a retained message, a 200 KB payload, and (MQTT 5) user
properties.

Usage: python3 websocket.py TCP_PORT WS_PORT PROTOCOL   (PROTOCOL is 311 or 5)
Prints OK or FAIL: <reason>; exits 0 or 1.
"""
import sys

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from paho_common import connect, disconnect_all, fail, next_message, publish_acknowledged
from paho_common import receive_into_queue, subscribe


def expect(received, topic, payload, qos, what):
    message = next_message(received, f"{what}: not delivered")
    got = (message.topic, message.payload, message.qos)
    if got != (topic, payload, qos):
        fail(f"{what}: got {got[0]!r}, {len(got[1])} bytes, QoS {got[2]}")
    return message


def main():
    tcp_port, ws_port, protocol = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    ws_sub = connect(ws_port, f"paho-ws-sub-{protocol}", protocol, transport="websockets")
    ws_received = receive_into_queue(ws_sub)
    if subscribe(ws_sub, "pws/to-ws/#", 2) != [2]:
        fail("the websocket subscription was not granted QoS 2")
    tcp_sub = connect(tcp_port, f"paho-tcp-sub-{protocol}", protocol)
    tcp_received = receive_into_queue(tcp_sub)
    subscribe(tcp_sub, "pws/to-tcp/#", 2)

    tcp_pub = connect(tcp_port, f"paho-tcp-pub-{protocol}", protocol)
    ws_pub = connect(ws_port, f"paho-ws-pub-{protocol}", protocol, transport="websockets")
    for qos in (0, 1, 2):
        topic, payload = f"pws/to-ws/q{qos}", f"tcp to ws at qos {qos}".encode()
        publish_acknowledged(tcp_pub, topic, payload, qos)
        expect(ws_received, topic, payload, qos, f"TCP → WebSocket QoS {qos}")
        topic, payload = f"pws/to-tcp/q{qos}", f"ws to tcp at qos {qos}".encode()
        publish_acknowledged(ws_pub, topic, payload, qos)
        expect(tcp_received, topic, payload, qos, f"WebSocket → TCP QoS {qos}")

    big = bytes(i % 251 for i in range(200_000))
    publish_acknowledged(ws_pub, "pws/to-ws/big", big, 1)
    expect(ws_received, "pws/to-ws/big", big, 1, "200 KB over WebSocket both ways")

    publish_acknowledged(ws_pub, "pws/retained", b"kept", 1, retain=True)
    late = connect(ws_port, f"paho-ws-late-{protocol}", protocol, transport="websockets")
    late_received = receive_into_queue(late)
    subscribe(late, "pws/retained", 1)
    message = expect(late_received, "pws/retained", b"kept", 1, "retained message")
    if not message.retain:
        fail("the retained message arrived without its retain flag")

    if protocol == "5":
        sent = Properties(PacketTypes.PUBLISH)
        sent.UserProperty = [("from", "websocket")]
        ws_pub.publish("pws/to-tcp/props", b"p", qos=1, properties=sent).wait_for_publish(5)
        message = expect(tcp_received, "pws/to-tcp/props", b"p", 1, "MQTT 5 properties")
        if getattr(message.properties, "UserProperty", None) != [("from", "websocket")]:
            fail(f"user properties lost: {message.properties}")

    disconnect_all(ws_sub, tcp_sub, tcp_pub, ws_pub, late)
    print("OK")


if __name__ == "__main__":
    main()
