#!/usr/bin/env python3
"""The MQTT 3.1.1 side of the three-client chat conversation in tests/chat.rs, with paho-mqtt 2.x.

Usage: python3 chat.py PORT
Registers "pat" from an anonymous client (replies on chat/a/<client id>/<tag>), logs in as pat,
joins two rooms, talks with "bob" (the rumqttc MQTT 5 client driven by tests/chat.rs), likes his
message, pages history, makes each bad request, tries to read bob's replies, then resets its
password through the security question and logs in with the new one.
Prints progress lines, then OK or FAIL: <reason>; exits 0 or 1.
"""
import sys
import threading
import time

from paho_common import connect_by_hand, fail, new_client, subscribe, publish_acknowledged

WAIT = 20


class Inbox:
    """Every message a client receives, kept so a test can wait for the one it needs."""

    def __init__(self, client):
        self.messages = []
        self.cond = threading.Condition()
        client.on_message = self.on_message

    def on_message(self, _client, _userdata, message):
        with self.cond:
            self.messages.append((message.topic, message.payload))
            self.cond.notify_all()

    def wait(self, pred, what):
        deadline = time.monotonic() + WAIT
        with self.cond:
            while True:
                for i, (topic, payload) in enumerate(self.messages):
                    if pred(topic, payload):
                        del self.messages[i]
                        return topic, payload
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"no {what}; received {self.messages!r}")
                self.cond.wait(left)


def client(client_id, user=None, password=None):
    c = new_client(client_id, "311", user, password)
    inbox = Inbox(c)
    reason = str(connect_by_hand(c, PORT, client_id))
    if reason != "Success":
        fail(f"{client_id}: CONNACK {reason}")
    c.loop_start()
    return c, inbox


def request(c, inbox, reply_prefix, op, tag, payload):
    """Publishes a request on chat/x/<op>/<tag> and returns the reply text from <prefix>/<tag>."""
    publish_acknowledged(c, f"chat/x/{op}/{tag}", payload, 1)
    _, reply = inbox.wait(lambda t, _p: t == f"{reply_prefix}/{tag}", f"reply to {op} {tag}")
    return reply.decode()


def expect_status(reply, status, what):
    if reply.split(" ", 1)[0] != status:
        fail(f"{what}: expected {status}, got {reply!r}")


def room_message(inbox, room, sender, text):
    """Waits for `<id> <time> <sender> <text>` in a room; returns the id."""
    def match(topic, payload):
        parts = payload.decode(errors="replace").split(" ", 3)
        return topic == f"chat/r/{room}" and parts[0].isdigit() and parts[2:] == [sender, text]
    _, payload = inbox.wait(match, f"{sender}'s {text!r} in {room}")
    return int(payload.split(b" ")[0])


def main():
    global PORT
    PORT = int(sys.argv[1])

    # --- Accounts from an anonymous client ----------------------------------------------------
    kiosk, kinbox = client("paho-kiosk")
    if subscribe(kiosk, "chat/a/paho-kiosk/#", 1) != [1]:
        fail("kiosk cannot subscribe to its own reply topic")
    a = "chat/a/paho-kiosk"
    expect_status(request(kiosk, kinbox, a, "register", "r1", "pat secretpass1"), "ok", "register")
    expect_status(request(kiosk, kinbox, a, "register", "r2", "pat secretpass1"), "name_taken", "taken")
    expect_status(request(kiosk, kinbox, a, "register", "r3", "pat2 short"), "password_too_short", "short")
    expect_status(request(kiosk, kinbox, a, "register", "r4", "p/t secretpass1"),
                  "name_bad_characters", "bad name")
    expect_status(request(kiosk, kinbox, a, "history", "r5", "general"), "not_logged_in", "anon history")
    publish_acknowledged(kiosk, "chat/r/general", b"anonymous words", 1)
    _, reply = kinbox.wait(lambda t, _p: t == a, "refusal of an anonymous message")
    expect_status(reply.decode(), "not_logged_in", "anonymous message")
    print("accounts ok", flush=True)

    # --- pat logs in and talks with bob -------------------------------------------------------
    pat, inbox = client("paho-pat", "pat", "secretpass1")
    u = "chat/u/pat"
    for topic in (f"{u}/#", "chat/r/general", "chat/r/camp"):
        if subscribe(pat, topic, 1) != [1]:
            fail(f"pat cannot subscribe to {topic}")
    for topic in ("chat/u/bob", "chat/u/+", "chat/a/bob-kiosk"):
        if subscribe(pat, topic, 1) != [128]:
            fail(f"pat may subscribe to {topic}")
    expect_status(request(pat, inbox, u, "setq", "s1", "First pet?\nRex"), "ok", "setq")

    publish_acknowledged(pat, "chat/r/general", b"hello from paho", 1)
    mine = room_message(inbox, "general", "pat", "hello from paho")
    print(f"sent {mine}", flush=True)
    bobs = room_message(inbox, "general", "bob", "hi pat")
    reply = request(pat, inbox, u, "like", "l1", str(bobs))
    if reply != f"ok liked\n{bobs} 1":
        fail(f"like: {reply!r}")
    inbox.wait(lambda t, p: t == "chat/r/general" and p == f"l {bobs} 1 +pat".encode(), "like count and liker")
    publish_acknowledged(pat, "chat/r/camp", b"camp fire at 8", 1)
    room_message(inbox, "camp", "pat", "camp fire at 8")

    page = request(pat, inbox, u, "history", "h1", "general").split("\n")
    if page[0] != "ok 2 messages" or len(page) != 3:
        fail(f"history: {page!r}")
    rows = [line.split(" ", 4) for line in page[1:]]
    if [(int(r[0]), r[2], r[3], r[4]) for r in rows] != [
        (mine, "pat", "0", "hello from paho"),
        (bobs, "bob", "pat", "hi pat"),
    ]:
        fail(f"history rows: {rows!r}")
    page = request(pat, inbox, u, "history", "h2", f"general after {mine} 1").split("\n")
    if page[0] != "ok 1 message" or not page[1].startswith(f"{bobs} "):
        fail(f"history after: {page!r}")

    # --- Bad requests: each gets its code, and the conversation goes on -----------------------
    for op, payload, status in [
        ("history", "nowhere", "unknown_room"),
        ("history", "general after", "bad_request"),
        ("history", "general after many", "bad_request"),
        ("like", "999999", "unknown_message"),
        ("like", "one", "bad_request"),
        ("dance", "", "bad_request"),
    ]:
        expect_status(request(pat, inbox, u, op, "b", payload), status, f"{op} {payload!r}")
    for payload, status in [
        (b"x" * 1001, "text_too_long"),
        (b"", "empty_text"),
        (b"two\nlines", "text_invalid"),
        (b"\xff\xfe", "bad_request"),
    ]:
        publish_acknowledged(pat, "chat/r/general", payload, 1)
        _, reply = inbox.wait(lambda t, _p: t == u, f"refusal of {payload[:10]!r}")
        expect_status(reply.decode(), status, f"message {payload[:10]!r}")
    print("bad requests ok", flush=True)

    # bob says when he has looked at the rooms; then pat goes.
    room_message(inbox, "general", "bob", "go on pat")

    # --- Password reset through the security question -----------------------------------------
    reply = request(kiosk, kinbox, a, "question", "q1", "pat")
    if reply != "ok question\nFirst pet?":
        fail(f"question: {reply!r}")
    wrong = request(kiosk, kinbox, a, "reset", "x1", "pat newsecret22\nMax")
    unknown = request(kiosk, kinbox, a, "reset", "x2", "nobody newsecret22\nRex")
    if wrong != unknown or not wrong.startswith("reset_failed "):
        fail(f"wrong answer {wrong!r} and unknown user {unknown!r} differ")
    expect_status(request(kiosk, kinbox, a, "reset", "x3", "pat newsecret22\n  rex "), "ok", "reset")
    pat.disconnect()
    pat.loop_stop()
    old = new_client("paho-pat-old", "311", "pat", "secretpass1")
    if str(connect_by_hand(old, PORT, "old password")) == "Success":
        fail("the old password still logs in")
    again, _ = client("paho-pat-new", "pat", "newsecret22")
    again.disconnect()
    kiosk.disconnect()
    print("OK", flush=True)


if __name__ == "__main__":
    main()
