// A small MQTT 3.1.1 client over WebSocket for Outpost's browser pages: CONNECT with a
// user name and password, SUBSCRIBE/UNSUBSCRIBE, PUBLISH at QoS 0 and 1 (both ways),
// keep alive with PINGREQ, and a close event when the link drops. No reconnecting here:
// the page decides when and how (backoff, fresh login token, catch-up). With
// `version: 5` it speaks MQTT 5 instead (empty properties out; an incoming PUBLISH's
// properties are read and handed to onmessage as `meta.properties`).
//
// Packets may span WebSocket messages and several may share one; the reader keeps the
// bytes of an unfinished packet until the rest arrives. Subscriptions ask for at most
// QoS 1, so the broker never sends QoS 2.
//
//   const c = new MqttWs({ url, clientId, username, password, keepAlive: 30 });
//   c.onmessage = (topic, payloadBytes, { qos, retain, properties }) => { ... };
//   c.onclose = (reason) => { ... };
//   await c.connect();                       // rejects on refusal or a dropped link
//   await c.subscribe(["chat/r/+", 1], ["chat/u/ana/#", 1]);   // granted QoS list
//   await c.publish("chat/r/general", "hello", { qos: 1 });    // resolves on PUBACK
//   c.close();
"use strict";

(function (global) {
  const CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, SUBSCRIBE = 8, SUBACK = 9,
    UNSUBSCRIBE = 10, UNSUBACK = 11, PINGREQ = 12, PINGRESP = 13, DISCONNECT = 14;
  const CONNACK_REASONS = {
    1: "unacceptable protocol version", 2: "client id rejected", 3: "server unavailable",
    4: "bad user name or password", 5: "not authorized",
    0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
    0x8a: "banned", 0x9f: "connection rate exceeded",
  };
  const utf8 = new TextEncoder();

  function varint(n) {
    const out = [];
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      out.push(b);
    } while (n > 0);
    return out;
  }

  function str(s) {
    const bytes = typeof s === "string" ? utf8.encode(s) : s;
    return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
  }

  /// A whole packet: the fixed header, then `body` (an array of small fields) and an
  /// optional payload (bytes, copied once; never spread, as it may be large).
  function packet(first, body, payload = new Uint8Array(0)) {
    const head = [first, ...varint(body.length + payload.length), ...body];
    const out = new Uint8Array(head.length + payload.length);
    out.set(head);
    out.set(payload, head.length);
    return out;
  }

  /// A variable byte integer at `at`: [value, next offset].
  function readVarint(bytes, at) {
    let value = 0, mult = 1;
    for (;;) {
      const b = bytes[at++];
      value += (b & 0x7f) * mult;
      mult *= 128;
      if (!(b & 0x80) || mult > 128 ** 4) return [value, at];
    }
  }

  /// MQTT 5 PUBLISH properties (section 3.3.2.3) from `bytes[at..end]`.
  function readProperties(bytes, at, end) {
    const text = new TextDecoder();
    const u16 = (i) => (bytes[i] << 8) | bytes[i + 1];
    const str = (i) => [text.decode(bytes.subarray(i + 2, i + 2 + u16(i))), i + 2 + u16(i)];
    const props = { user_properties: [] };
    while (at < end) {
      const id = bytes[at++];
      switch (id) {
        case 0x01: props.payload_format = bytes[at++]; break;
        case 0x02: props.message_expiry = ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3]; at += 4; break;
        case 0x03: [props.content_type, at] = str(at); break;
        case 0x08: [props.response_topic, at] = str(at); break;
        case 0x09: props.correlation_data = bytes.slice(at + 2, at + 2 + u16(at)); at += 2 + u16(at); break;
        case 0x0b: { let sid; [sid, at] = readVarint(bytes, at); (props.subscription_ids ||= []).push(sid); break; }
        case 0x23: at += 2; break; // topic alias: never asked for
        case 0x26: { let k, v; [k, at] = str(at); [v, at] = str(at); props.user_properties.push([k, v]); break; }
        default: return props; // unknown: stop rather than misread
      }
    }
    return props;
  }

  class MqttWs {
    constructor({ url, clientId, username, password, keepAlive = 30, version = 4 }) {
      Object.assign(this, { url, clientId, username, password, keepAlive, version });
      this.v5 = version === 5;
      this.onmessage = () => {};
      this.onclose = () => {};
      this.ws = null;
      this.buf = new Uint8Array(0);
      this.nextId = 1;
      this.waiting = new Map(); // packet id -> { resolve, reject }
      this.connected = false;
      this.lastSent = 0;
      this.pingSent = 0;
      this.timer = null;
    }

    connect() {
      return new Promise((resolve, reject) => {
        let ws;
        try {
          ws = new WebSocket(this.url, "mqtt");
        } catch (e) {
          reject(e);
          return;
        }
        this.ws = ws;
        ws.binaryType = "arraybuffer";
        this.connack = { resolve, reject };
        ws.onopen = () => this.sendConnect();
        ws.onmessage = (e) => this.receive(new Uint8Array(e.data));
        ws.onclose = (e) => this.closed(e.code === 1000 ? "closed" : `link lost (${e.code})`);
        ws.onerror = () => {}; // onclose follows with the details there are
      });
    }

    sendConnect() {
      let flags = 0x02; // clean session: the page catches up through chat history
      const payload = [...str(this.clientId)];
      if (this.username !== undefined) {
        flags |= 0x80;
        payload.push(...str(this.username));
      }
      if (this.password !== undefined) {
        flags |= 0x40;
        payload.push(...str(this.password));
      }
      const body = [...str("MQTT"), this.v5 ? 5 : 4, flags, this.keepAlive >> 8, this.keepAlive & 0xff];
      if (this.v5) body.push(0); // no CONNECT properties
      body.push(...payload);
      this.send(packet(CONNECT << 4, body));
    }

    send(bytes) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(bytes);
        this.lastSent = Date.now();
      }
    }

    packetId() {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      return id;
    }

    /// Resolves with the packet's answer, or rejects when the link drops first.
    expect(id) {
      return new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    }

    subscribe(...filters) {
      const id = this.packetId();
      const body = [id >> 8, id & 0xff];
      if (this.v5) body.push(0);
      for (const [filter, qos] of filters) body.push(...str(filter), Math.min(qos, 1));
      this.send(packet((SUBSCRIBE << 4) | 2, body));
      return this.expect(id);
    }

    unsubscribe(...filters) {
      const id = this.packetId();
      const body = [id >> 8, id & 0xff];
      if (this.v5) body.push(0);
      for (const filter of filters) body.push(...str(filter));
      this.send(packet((UNSUBSCRIBE << 4) | 2, body));
      return this.expect(id);
    }

    /// QoS 0 resolves at once; QoS 1 once the broker has the message on disk (PUBACK).
    publish(topic, payload, { qos = 0, retain = false } = {}) {
      if (!this.connected) return Promise.reject(new Error("not connected"));
      const data = typeof payload === "string" ? utf8.encode(payload) : payload;
      const body = [...str(topic)];
      let id = 0;
      if (qos > 0) {
        id = this.packetId();
        body.push(id >> 8, id & 0xff);
      }
      if (this.v5) body.push(0);
      this.send(packet((PUBLISH << 4) | (qos > 0 ? 2 : 0) | (retain ? 1 : 0), body, data));
      return qos > 0 ? this.expect(id) : Promise.resolve();
    }

    close() {
      if (this.ws) {
        this.send(new Uint8Array([DISCONNECT << 4, 0]));
        this.ws.close(1000);
      }
    }

    receive(bytes) {
      const joined = new Uint8Array(this.buf.length + bytes.length);
      joined.set(this.buf);
      joined.set(bytes, this.buf.length);
      let at = 0;
      while (true) {
        let len = 0, mult = 1, i = at + 1;
        for (;;) {
          if (i >= joined.length) { this.buf = joined.slice(at); return; }
          const b = joined[i++];
          len += (b & 0x7f) * mult;
          mult *= 128;
          if (!(b & 0x80)) break;
          if (mult > 128 ** 4) { this.fail("malformed packet from the broker"); return; }
        }
        if (i + len > joined.length) { this.buf = joined.slice(at); return; }
        this.handle(joined[at], joined.subarray(i, i + len));
        at = i + len;
        if (at === joined.length) { this.buf = new Uint8Array(0); return; }
      }
    }

    handle(first, body) {
      const type = first >> 4;
      const u16 = (at) => (body[at] << 8) | body[at + 1];
      switch (type) {
        case CONNACK: {
          const code = body[1];
          if (code === 0) {
            this.connected = true;
            this.startKeepAlive();
            this.connack.resolve();
          } else {
            this.connack.reject(new Error(CONNACK_REASONS[code] || `refused (${code})`));
            this.ws.close();
          }
          break;
        }
        case PUBLISH: {
          const qos = (first >> 1) & 3;
          const topicLen = u16(0);
          const topic = new TextDecoder().decode(body.subarray(2, 2 + topicLen));
          let at = 2 + topicLen;
          if (qos > 0) {
            const id = u16(at);
            at += 2;
            this.send(new Uint8Array([PUBACK << 4, 2, id >> 8, id & 0xff]));
          }
          let properties;
          if (this.v5) {
            const [len, start] = readVarint(body, at);
            properties = readProperties(body, start, start + len);
            at = start + len;
          }
          this.onmessage(topic, body.slice(at), { qos, retain: (first & 1) === 1, properties });
          break;
        }
        case PUBACK:
        case UNSUBACK:
          this.answer(u16(0), undefined);
          break;
        case SUBACK: {
          // MQTT 5: properties between the packet id and the codes.
          let codes = 2;
          if (this.v5) {
            const [len, start] = readVarint(body, 2);
            codes = start + len;
          }
          this.answer(u16(0), Array.from(body.subarray(codes)));
          break;
        }
        case DISCONNECT:
          if (this.v5) {
            this.fail(`disconnected by the broker (reason 0x${(body[0] || 0).toString(16)})`);
            break;
          }
          this.fail(`unexpected packet type ${type} from the broker`);
          break;
        case PINGRESP:
          this.pingSent = 0;
          break;
        default:
          this.fail(`unexpected packet type ${type} from the broker`);
      }
    }

    answer(id, value) {
      const w = this.waiting.get(id);
      if (w) {
        this.waiting.delete(id);
        w.resolve(value);
      }
    }

    /// Pings when nothing was sent for a keep-alive period; a ping unanswered for one
    /// more period means the link is dead, even if the socket has not noticed.
    startKeepAlive() {
      const period = this.keepAlive * 1000;
      if (!period) return;
      this.timer = setInterval(() => {
        const now = Date.now();
        if (this.pingSent && now - this.pingSent > period) {
          this.fail("no answer to ping");
        } else if (!this.pingSent && now - this.lastSent >= period * 0.75) {
          this.send(new Uint8Array([PINGREQ << 4, 0]));
          this.pingSent = now;
        }
      }, Math.min(period / 4, 5000));
    }

    fail(reason) {
      if (this.ws) this.ws.close();
      this.closed(reason);
    }

    closed(reason) {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      const wasConnected = this.connected;
      this.connected = false;
      for (const w of this.waiting.values()) w.reject(new Error(reason));
      this.waiting.clear();
      if (this.ws) {
        this.ws.onclose = this.ws.onmessage = this.ws.onopen = null;
        this.ws = null;
        if (!wasConnected) this.connack.reject(new Error(reason));
        this.onclose(reason);
      }
    }
  }

  global.MqttWs = MqttWs;
})(typeof window !== "undefined" ? window : globalThis);
