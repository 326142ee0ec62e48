#!/usr/bin/env python3
"""Writes the seed corpus: one valid frame of every packet type for each version.

    python3 fuzz/gen_corpus.py        # rewrites fuzz/corpus/{decode_v5,decode_v311,connection}

The frames are built here by hand, independently of Outpost's codec, so a codec bug
cannot shape its own seeds. Each file is named after what it holds; tests/fuzz_regressions.rs
checks that every decode seed is a whole valid frame.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def vbi(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack(">H", n)


def u32(n):
    return struct.pack(">I", n)


def s(text):
    raw = text.encode() if isinstance(text, str) else text
    return u16(len(raw)) + raw


def frame(first, body):
    return bytes([first]) + vbi(len(body)) + body


def props(*items):
    body = b"".join(items)
    return vbi(len(body)) + body


# MQTT 5 properties, one helper per wire type.
def p_byte(ident, v):
    return bytes([ident, v])


def p_u16(ident, v):
    return bytes([ident]) + u16(v)


def p_u32(ident, v):
    return bytes([ident]) + u32(v)


def p_vbi(ident, v):
    return bytes([ident]) + vbi(v)


def p_str(ident, v):
    return bytes([ident]) + s(v)


def p_pair(k, v):
    return b"\x26" + s(k) + s(v)


def connect(level, flags, keep_alive, client_id, conn_props=None, will=None, user=None, pw=None):
    body = s("MQTT") + bytes([level, flags]) + u16(keep_alive)
    if level == 5:
        body += conn_props if conn_props is not None else props()
    body += s(client_id)
    if will:
        will_props, topic, payload = will
        if level == 5:
            body += will_props
        body += s(topic) + s(payload)
    if user is not None:
        body += s(user)
    if pw is not None:
        body += s(pw)
    return frame(0x10, body)


def seeds_v5():
    yield "connect-minimal", connect(5, 0x02, 60, "c", props())
    yield "connect-full", connect(
        5,
        0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80,  # clean, will QoS 1 retained, user, password
        30,
        "client-1",
        props(
            p_u32(0x11, 3600),
            p_u16(0x21, 10),
            p_u32(0x27, 65536),
            p_u16(0x22, 8),
            p_byte(0x19, 1),
            p_byte(0x17, 0),
            p_pair("k", "v"),
        ),
        will=(
            props(p_u32(0x18, 5), p_byte(0x01, 1), p_u32(0x02, 60), p_str(0x03, "text/plain"),
                  p_str(0x08, "reply/to"), bytes([0x09]) + s(b"\x01\x02")),
            "will/topic",
            b"bye",
        ),
        user="user",
        pw=b"secret",
    )
    yield "connect-auth-method", connect(
        5, 0x02, 0, "", props(p_str(0x15, "SCRAM-SHA-1"), bytes([0x16]) + s(b"\x00\x01"))
    )
    yield "connack", frame(0x20, b"\x01\x00" + props(p_u16(0x21, 20), p_byte(0x24, 1),
                                                      p_str(0x12, "assigned"), p_u16(0x13, 30)))
    yield "connack-refused", frame(0x20, b"\x00\x87" + props(p_str(0x1F, "not authorized")))
    yield "publish-qos0", frame(0x30, s("a/b") + props() + b"hello")
    yield "publish-qos1-props", frame(
        0x32,
        s("sensors/t") + u16(7)
        + props(p_byte(0x01, 1), p_u32(0x02, 10), p_str(0x03, "json"), p_str(0x08, "r/t"),
                bytes([0x09]) + s(b"id"), p_vbi(0x0B, 300), p_pair("a", "b"))
        + b'{"t":21}',
    )
    yield "publish-qos2-dup-retain", frame(0x3D, s("x") + u16(9) + props() + b"")
    yield "publish-topic-alias", frame(0x30, s("") + props(p_u16(0x23, 1)) + b"aliased")
    yield "puback", frame(0x40, u16(7))
    yield "puback-reason-props", frame(0x40, u16(7) + b"\x10" + props(p_str(0x1F, "no subscribers")))
    yield "pubrec", frame(0x50, u16(9) + b"\x00")
    yield "pubrel", frame(0x62, u16(9) + b"\x92" + props())
    yield "pubcomp", frame(0x70, u16(9))
    yield "subscribe", frame(
        0x82,
        u16(1) + props(p_vbi(0x0B, 5), p_pair("k", "v"))
        + s("a/+/c") + b"\x01"
        + s("#") + b"\x2E"  # QoS 2, no local, retain as published, retain handling 2
        + s("$share/g/t") + b"\x00",
    )
    yield "suback", frame(0x90, u16(1) + props() + b"\x01\x02\x80")
    yield "unsubscribe", frame(0xA2, u16(2) + props(p_pair("k", "v")) + s("a/+/c") + s("#"))
    yield "unsuback", frame(0xB0, u16(2) + props() + b"\x00\x11")
    yield "pingreq", frame(0xC0, b"")
    yield "pingresp", frame(0xD0, b"")
    yield "disconnect", frame(0xE0, b"")
    yield "disconnect-will", frame(0xE0, b"\x04" + props(p_u32(0x11, 0), p_str(0x1C, "other")))
    yield "auth", frame(0xF0, b"\x18" + props(p_str(0x15, "SCRAM-SHA-1"), bytes([0x16]) + s(b"data")))
    yield "auth-empty", frame(0xF0, b"")


def seeds_v311():
    yield "connect-minimal", connect(4, 0x02, 60, "c")
    yield "connect-full", connect(
        4, 0x02 | 0x04 | 0x10 | 0x40 | 0x80, 30, "client-1",  # will QoS 2, user, password
        will=(None, "will/topic", b"bye"), user="user", pw=b"secret",
    )
    yield "connect-empty-id", connect(4, 0x02, 0, "")
    yield "connack", frame(0x20, b"\x01\x00")
    yield "connack-refused", frame(0x20, b"\x00\x05")
    yield "publish-qos0", frame(0x30, s("a/b") + b"hello")
    yield "publish-qos1", frame(0x32, s("sensors/t") + u16(7) + b'{"t":21}')
    yield "publish-qos2-dup-retain", frame(0x3D, s("x") + u16(9))
    yield "puback", frame(0x40, u16(7))
    yield "pubrec", frame(0x50, u16(9))
    yield "pubrel", frame(0x62, u16(9))
    yield "pubcomp", frame(0x70, u16(9))
    yield "subscribe", frame(0x82, u16(1) + s("a/+/c") + b"\x01" + s("#") + b"\x02")
    yield "suback", frame(0x90, u16(1) + b"\x01\x02\x80")
    yield "unsubscribe", frame(0xA2, u16(2) + s("a/+/c") + s("#"))
    yield "unsuback", frame(0xB0, u16(2))
    yield "pingreq", frame(0xC0, b"")
    yield "pingresp", frame(0xD0, b"")
    yield "disconnect", frame(0xE0, b"")


def seeds_connection():
    """First byte: even = no CONNECT from the harness, 0x01 = MQTT 3.1.1, 0x03 = MQTT 5."""
    v5 = dict(seeds_v5())
    v3 = dict(seeds_v311())
    session_v5 = [v5["subscribe"], v5["publish-qos1-props"], v5["publish-qos2-dup-retain"],
                  v5["pubrel"], v5["puback"], v5["unsubscribe"], v5["pingreq"]]
    session_v3 = [v3["subscribe"], v3["publish-qos1"], v3["publish-qos2-dup-retain"],
                  v3["pubrel"], v3["unsubscribe"], v3["pingreq"]]
    yield "v5-session", b"\x03" + b"".join(session_v5) + v5["disconnect"]
    yield "v5-alias-then-will", b"\x03" + frame(0x30, s("long/topic") + props(p_u16(0x23, 1)) + b"1") \
        + v5["publish-topic-alias"] + v5["disconnect-will"]
    yield "v5-auth", b"\x03" + v5["auth"]
    yield "v311-session", b"\x01" + b"".join(session_v3) + v3["disconnect"]
    yield "own-connect-v5", b"\x00" + v5["connect-full"] + v5["subscribe"] + v5["publish-qos0"]
    yield "own-connect-v311", b"\x00" + v3["connect-full"] + v3["subscribe"] + v3["publish-qos0"]
    yield "own-connect-auth", b"\x00" + v5["connect-auth-method"] + v5["auth"]
    yield "second-connect", b"\x01" + v3["connect-minimal"]
    yield "garbage-first", b"\x00\xff\xff\xff\xff\x7f"


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):
        os.remove(os.path.join(d, name))
    for name, data in seeds:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("decode_v5", seeds_v5())
    write("decode_v311", seeds_v311())
    write("connection", seeds_connection())
