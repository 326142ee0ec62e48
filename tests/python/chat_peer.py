#!/usr/bin/env python3
"""A chat participant beside the browsers in tests/browser/chat.test.mjs: paho-mqtt 2.x, MQTT 5
over TCP, logged in as its own chat user, in every room (chat/r/+).

Usage: python3 chat_peer.py PORT USER PASSWORD
Takes commands on stdin, one JSON object a line, and answers each on stdout:
  {"say": ROOM, "text": TEXT}  publishes TEXT to ROOM (QoS 1); answers {"said": TEXT, "id": ID}
                               once the PUBACK and the room's copy have come
  {"like": TEXT}               likes (or, the second time, unlikes) the message with that text;
                               answers {"liked": TEXT, "reply": FIRST REPLY LINE}
  {"check": {ROOM: [[SENDER, TEXT], ...]}}
                               fails unless what this client received in each room is exactly
                               that list, in that order, each message once, and the room's stored
                               history (paged with `history ROOM after 0`) is the same messages
                               with the same ids; answers {"checked": ROOMS}, prints OK, exits 0
Every room event it receives is printed as it comes: {"room", "id", "sender", "text"} for a
message, {"room", "like": ID, "likes": N} for a like count. Requests carry an MQTT 5 Response
Topic (chat/u/USER/peer) and Correlation Data. Any failure prints FAIL: <reason>, exits 1.
"""
import json
import sys
import threading
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from paho_common import connect_by_hand, fail, new_client, subscribe, publish_acknowledged

WAIT = 20
PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
REPLIES = f"chat/u/{USER}/peer"

lock = threading.Condition()
rooms = {}  # room -> [(id, sender, text)] in arrival order
likes = []  # (room, id, likes) in arrival order
replies = {}  # correlation data -> reply text


def say(**record):
    with lock:
        print(json.dumps(record), flush=True)


def on_message(_client, _userdata, message):
    text = message.payload.decode()
    with lock:
        if message.topic.startswith("chat/r/"):
            room = message.topic[len("chat/r/"):]
            if text[:1].isdigit():
                msg_id, _time, sender, body = text.split(" ", 3)
                rooms.setdefault(room, []).append((int(msg_id), sender, body))
                say(room=room, id=int(msg_id), sender=sender, text=body)
            elif text.startswith("l "):
                _l, msg_id, count, _who = text.split(" ")
                likes.append((room, int(msg_id), int(count)))
                say(room=room, like=int(msg_id), likes=int(count))
        elif message.topic == REPLIES:
            cd = message.properties.CorrelationData if message.properties else None
            replies[bytes(cd or b"")] = text
        lock.notify_all()


def wait_for(pred, what):
    deadline = time.monotonic() + WAIT
    with lock:
        while True:
            found = pred()
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                fail(f"timed out waiting for {what}; rooms {rooms!r}")
            lock.wait(left)


next_request = 0


def request(client, op, payload):
    """Publishes chat/x/<op> with a Response Topic and Correlation Data; returns the reply."""
    global next_request
    next_request += 1
    cd = f"r{next_request}".encode()
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = REPLIES
    props.CorrelationData = cd
    info = client.publish(f"chat/x/{op}", payload, qos=1, properties=props)
    info.wait_for_publish(WAIT)
    if not info.is_published():
        fail(f"request {op} {payload!r} not acknowledged")
    return wait_for(lambda: replies.pop(cd, None), f"the reply to {op} {payload!r}")


def find_message(text):
    with lock:
        found = [(room, m) for room, ms in rooms.items() for m in ms if m[2] == text]
    if len(found) != 1:
        fail(f"want one message {text!r}, have {found!r}")
    return found[0]


def stored(client, room):
    """The room's whole history from the store, oldest first, as (id, sender, text)."""
    rows, after = [], 0
    while True:
        reply = request(client, "history", f"{room} after {after} 50").split("\n")
        if not reply[0].startswith("ok"):
            fail(f"history {room}: {reply[0]}")
        more = reply[-1] == "more"
        for line in reply[1:-1] if more else reply[1:]:
            msg_id, _time, sender, _likers, body = line.split(" ", 4)
            rows.append((int(msg_id), sender, body))
        if not more:
            return rows
        after = rows[-1][0]


def check(client, want):
    for room, expected in sorted(want.items()):
        with lock:
            got = list(rooms.get(room, []))
        expected = [tuple(pair) for pair in expected]
        if [(s, t) for _, s, t in got] != expected:
            fail(f"room {room}: received {got!r}, want {expected!r}")
        ids = [i for i, _, _ in got]
        if ids != sorted(set(ids)):
            fail(f"room {room}: ids not once each and increasing: {ids!r}")
        history = stored(client, room)
        if history != got:
            fail(f"room {room}: history {history!r} differs from what came live {got!r}")
    say(checked=sorted(want))


def main():
    client = new_client(f"peer-{USER}", "5", USER, PASSWORD)
    client.on_message = on_message
    reason = connect_by_hand(client, PORT, USER)
    if reason.is_failure:
        fail(f"CONNACK {reason}")
    client.loop_start()
    for topic in ("chat/r/+", f"chat/u/{USER}/#"):
        granted = subscribe(client, topic, 1)
        if granted != [1]:
            fail(f"SUBACK {granted} for {topic}")
    say(ready=USER)
    for line in sys.stdin:
        command = json.loads(line)
        if "say" in command:
            room, text = command["say"], command["text"]
            with lock:
                seen = len(rooms.get(room, []))
            publish_acknowledged(client, f"chat/r/{room}", text, 1)
            msg_id = wait_for(
                lambda: next(
                    (i for i, s, t in rooms.get(room, [])[seen:] if s == USER and t == text), None
                ),
                f"the room's copy of {text!r}",
            )
            say(said=text, id=msg_id)
        elif "like" in command:
            _room, (msg_id, _s, _t) = find_message(command["like"])
            reply = request(client, "like", str(msg_id))
            say(liked=command["like"], reply=reply.split("\n")[0])
        elif "check" in command:
            check(client, command["check"])
            client.disconnect()
            client.loop_stop()
            print("OK", flush=True)
            return
        else:
            fail(f"unknown command {command!r}")
    fail("stdin closed before check")


if __name__ == "__main__":
    main()
