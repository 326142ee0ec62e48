#!/usr/bin/env python3
"""One MQTT 3.1.1 client from a chosen loopback source address (127.0.0.2, say), by hand-made
frames, for the tests that need a second client address (tests/login_limits.rs).

Usage: python3 from_address.py SOURCE PORT CLIENT_ID USER|- PASSWORD|- [REQUEST PAYLOAD...]
Connects from SOURCE and prints "connack <code>". With REQUEST (a chat request such as
chat/x/reset), publishes each PAYLOAD at once, the Nth to REQUEST/gN, and prints
"reply <payload>" for each answer, in order, from the default reply topic
(chat/u/<USER>/gN, or chat/a/<CLIENT_ID>/gN without a user). USER may be LOGIN=STORED: log
in as LOGIN and expect the replies under the account's stored name (chat/u/STORED/gN).
"""
import socket
import struct
import sys


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def read_packet(sock):
    first = sock.recv(1)
    if not first:
        raise SystemExit("closed")
    length, shift = 0, 0
    while True:
        b = sock.recv(1)[0]
        length += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise SystemExit("closed")
        body += chunk
    return first[0], body


def main():
    source, port, client_id, user, password = sys.argv[1:6]
    user, _, stored = user.partition("=")
    request = sys.argv[6:]
    sock = socket.socket()
    sock.settimeout(20)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", int(port)))
    flags = 0x02
    payload = string(client_id)
    if user != "-":
        flags |= 0x80
        payload += string(user)
    if password != "-":
        flags |= 0x40
        payload += string(password)
    sock.sendall(packet(0x10, string("MQTT") + bytes([4, flags]) + struct.pack(">H", 30) + payload))
    _, body = read_packet(sock)
    print("connack", body[1], flush=True)
    if body[1] != 0 or not request:
        return
    topic, messages = request[0], request[1:]
    owner = f"chat/u/{stored or user}" if user != "-" else f"chat/a/{client_id}"
    sock.sendall(packet(0x82, struct.pack(">H", 1) + string(owner + "/+") + bytes([0])))
    kind, body = read_packet(sock)
    assert kind == 0x90 and body[2] < 0x80, (kind, body)
    sock.sendall(b"".join(
        packet(0x30, string(f"{topic}/g{n}") + m.encode()) for n, m in enumerate(messages, 1)))
    replies = {}
    while len(replies) < len(messages):
        kind, body = read_packet(sock)
        if kind >> 4 == 3:
            (length,) = struct.unpack(">H", body[:2])
            tag = int(body[2:2 + length].decode().rsplit("/g", 1)[1])
            replies[tag] = body[2 + length:].decode()
    for n in sorted(replies):
        print("reply", replies[n], flush=True)


main()
