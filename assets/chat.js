// The /chat page: rooms, live messages, send, likes, history paging and unread markers,
// over MQTT over WebSocket (assets/mqtt-ws.js) with the chat service's wire format
// (docs/chat.md). It logs in with a single-use token the web console hands out for the
// session (POST /api/chat/token) and, when the link drops, reconnects with backoff and a
// fresh token, then catches up every room it has seen with `history <room> after <id>`.
// What the user sends goes through an outbox: shown at once as "sending…", published in
// order once the link is up and caught up, and resolved by its own copy coming back from
// the room, so a message typed offline is sent after the reconnect, and once.
//
// Direct messages are rooms named `@<user>` on the page (sent to chat/d/<user>, read on
// chat/u/<me>/d/<user>). Rooms the user opened are joined (their own topic subscribed), so
// the others see them online; presence lines (j/q/o/f) keep the member list current.
// While the tab is hidden, direct messages and @mentions raise a browser notification
// (when allowed), and the title counts what is unread; a room can be muted. Unread counts
// come from the server's read markers (the `rooms` reply's `u<n>`), which the page moves
// with `read` as it shows messages, so every browser and device of the user agrees; the
// block list comes from `blocks`; a direct conversation shows whether the peer is online.
//
// Every text from the network is put in the page with textContent, never as HTML.
"use strict";

(function () {
  const PAGE = 20; // messages per history request
  const UNREAD_MAX = 999; // the server counts unread messages up to this many
  const REPLY_WAIT_MS = 10000; // a request unanswered this long counts as lost
  const READ_DELAY_MS = 2000; // a room's read marker moves at most this often
  const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const root = document.getElementById("chat");
  const el = (id) => document.getElementById(id);
  const ui = {
    rooms: el("rooms"), list: el("messages"), title: el("room-title"), status: el("status"),
    form: el("send"), text: el("text"), newRoom: el("new-room"), older: el("older"),
    members: el("members"), mute: el("mute"), block: el("block"), notify: el("notify"), reconnect: el("reconnect"),
  };
  const TITLE = document.title;
  const URL_RE = /\bhttps?:\/\/[^\s<>"]+/g;
  let retryTimer = null;
  /// The list shows its newest message: kept so when the layout around it changes (the
  /// "Older messages" button, the member list, a phone's keyboard).
  let pinned = true;

  /// name → { messages: Map id → {id, time, sender, text, likes}, newest, oldest, more,
  /// unread, members, count, loaded, synced, syncedOn }. `synced`: the page holds every
  /// message of the room up to this id, the point a catch-up asks from (not `newest`: on a
  /// fresh link a live message can come before the catch-up, and asking after it would
  /// skip what was said while the link was down). `syncedOn`: the link on which the room
  /// was loaded or caught up, so whatever comes live on it keeps `synced` moving.
  const rooms = new Map();
  let current = null;
  let user = null;
  let client = null;
  let attempt = 0;
  // Tags are unique to this page, as every page of the same user reads chat/u/<user>/#.
  const tagPrefix = Math.random().toString(36).slice(2, 8);
  let nextTag = 1;
  const pending = new Map(); // reply tag → resolve
  /// Caught up on the current link: the outbox may publish.
  let ready = false;
  let pumping = false;
  let nextKey = 1;
  /// What the user sent, oldest first, until the room echoes it or the service refuses it:
  /// { key, room, text, state, acked, after, reason }. state: "queued" (not yet
  /// published), "sent" (published on this link), "unsure" (published on a link that
  /// dropped before the PUBACK: the catch-up decides), "failed" (refused; shown until
  /// retried or discarded). `after` is the room's newest id when it was published: its
  /// echo comes later.
  const outbox = [];
  /// The users whose direct messages this user refuses (`blocks`).
  let blocked = new Set();

  function room(name) {
    if (!rooms.has(name)) {
      rooms.set(name, {
        messages: new Map(), newest: 0, oldest: 0, more: true, unread: 0,
        members: 0, count: 0, loaded: false, joined: false, synced: 0, syncedOn: null,
        memberNames: new Set(), online: new Set(),
      });
    }
    return rooms.get(name);
  }

  /// Runs a change to the header (status, members) that may change the list's height, and
  /// keeps the newest message in view if it was: at once, not a frame later when the
  /// ResizeObserver would.
  function keepingBottom(change) {
    const wasPinned = pinned;
    change();
    if (wasPinned) ui.list.scrollTop = ui.list.scrollHeight;
  }

  function setStatus(text, kind) {
    keepingBottom(() => {
      ui.status.textContent = text;
      ui.status.dataset.kind = kind;
      root.dataset.link = kind;
      ui.reconnect.hidden = kind !== "down";
    });
  }

  const isDirect = (name) => name.startsWith("@");
  const muteKey = (name) => `outpost.chat.mute.${user}.${name}`;
  const muted = (name) => localStorage.getItem(muteKey(name)) === "1";
  /// Where a message to `name` is published.
  const sendTopic = (name) => (isDirect(name) ? `chat/d/${name.slice(1)}` : `chat/r/${name}`);

  // --- the link ---------------------------------------------------------------------

  async function token() {
    const reply = await fetch("/api/chat/token", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin",
    });
    if (reply.status === 401 || reply.status === 403) {
      location.href = "/login";
      throw new Error("logged out");
    }
    if (!reply.ok) throw new Error(`the server answered ${reply.status}`);
    return reply.json();
  }

  async function connect() {
    setStatus(attempt ? "reconnecting…" : "connecting…", "connecting");
    let c = null;
    try {
      const grant = await token();
      user = grant.user;
      const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${grant.ws_port}${grant.ws_path}`;
      const id = `web-${user}-${Math.random().toString(36).slice(2, 10)}`;
      c = new MqttWs({ url, clientId: id, username: user, password: grant.token, keepAlive: 20 });
      client = c;
      c.onmessage = onMessage;
      c.onclose = (reason) => {
        if (client !== c) return;
        client = null;
        ready = false;
        for (const e of outbox) if (e.state === "sent" && !e.acked) e.state = "unsure";
        for (const resolve of pending.values()) resolve(null);
        pending.clear();
        retry(reason);
      };
      await c.connect();
      await c.subscribe(["chat/r/+", 1], [`chat/u/${user}/#`, 1]);
      for (const r of rooms.values()) r.joined = false;
      attempt = 0;
      setStatus(`connected as ${user}`, "up");
      await refreshRooms();
      await loadBlocks();
      for (const [name, r] of rooms) if (r.member || name === current) await join(name);
      if (current) await loadMembers(current);
      await settle(c);
    } catch (e) {
      if (c && client !== c) return; // the link dropped and onclose is retrying already
      if (c) {
        client = null;
        c.onclose = () => {};
        c.close();
      }
      retry(e.message);
    }
  }

  /// Plain words for people; the technical reason goes to the console only.
  function retry(reason) {
    const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    const wait = Math.round(base * (0.75 + Math.random() / 2));
    attempt += 1;
    console.info("chat link down:", reason);
    setStatus(`offline, retrying in ${Math.ceil(wait / 1000)} s`, "down");
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, wait);
  }

  /// Subscribing to a room's own topic joins it: the others see this user there.
  async function join(name) {
    const r = room(name);
    if (isDirect(name) || r.joined || !client) return;
    r.joined = true;
    try {
      await client.subscribe([`chat/r/${name}`, 1]);
    } catch {
      r.joined = false;
    }
  }

  /// `members <room>`: `o` names online, `f` the others (for `@<peer>`: the two of the
  /// conversation).
  async function loadMembers(name) {
    const lines = await request("members", name);
    if (!lines || !lines[0].startsWith("ok")) return;
    const r = room(name);
    r.memberNames = new Set();
    r.online = new Set();
    for (const line of lines.slice(1)) applyPresence(r, line);
    if (name === current) renderMembers();
  }

  /// One presence line: `j|q|o|f <name> …`.
  function applyPresence(r, line) {
    const [kind, ...names] = line.split(" ");
    for (const n of names) {
      if (kind === "j" || kind === "o" || kind === "f") r.memberNames.add(n);
      if (kind === "q") r.memberNames.delete(n);
      if (kind === "o") r.online.add(n);
      if (kind === "f" || kind === "q") r.online.delete(n);
    }
  }

  /// On a fresh link: catch up, decide what the dropped link left unsure, then let the
  /// outbox go. A catch-up cut short (a reply lost while the link stayed up) is tried
  /// again, since sending before it could send twice.
  async function settle(link) {
    if (client !== link) return;
    if (!(await catchUp(link))) {
      if (client === link) setTimeout(() => settle(link), 5000);
      return;
    }
    for (const e of outbox) {
      // Caught up and no echo: not received (resend), or refused with the refusal lost.
      if (e.state === "unsure") e.state = "queued";
      else if (e.state === "sent" && e.acked) refuse(e, "no answer from the chat service");
    }
    ready = true;
    pump();
  }

  /// Publishes queued messages one at a time, in order, each after the PUBACK of the one
  /// before, so a refusal (which names no message) belongs to the oldest one sent.
  async function pump() {
    if (pumping) return;
    pumping = true;
    try {
      for (let e; ready && (e = outbox.find((x) => x.state === "queued")); ) {
        e.state = "sent";
        e.acked = false;
        e.after = room(e.room).newest;
        renderPending(e);
        try {
          await client.publish(sendTopic(e.room), e.text, { qos: 1 });
          e.acked = true;
        } catch {
          break; // the link dropped: onclose made it "unsure"
        }
      }
    } finally {
      pumping = false;
    }
  }

  function queueMessage(name, text) {
    const e = { key: nextKey++, room: name, text, state: "queued", acked: false, after: 0, reason: "" };
    outbox.push(e);
    if (name === current) {
      ui.list.append(pendingItem(e));
      ui.list.scrollTop = ui.list.scrollHeight;
    }
    pump();
  }

  /// My own message came back from the room: it resolves the oldest published entry of
  /// that room with the same text.
  function echoed(name, m) {
    const i = outbox.findIndex(
      (e) => e.room === name && e.text === m.text && (e.state === "sent" || e.state === "unsure") && m.id > e.after,
    );
    if (i < 0) return;
    const [e] = outbox.splice(i, 1);
    pendingElement(e)?.remove();
  }

  /// A reply without a tag on chat/u/<user> is the refusal of a sent message.
  function refused(lines) {
    const [status, ...words] = lines[0].split(" ");
    if (status === "ok") return;
    const e = outbox.find((x) => x.state === "sent");
    if (e) refuse(e, words.join(" ") || status);
  }

  function refuse(e, reason) {
    e.state = "failed";
    e.reason = reason;
    renderPending(e);
  }

  /// Sends a request and resolves with its reply's lines (status first), or null when
  /// the link dropped or no reply came in time.
  function request(name, payload) {
    if (!client) return Promise.resolve(null);
    const tag = `${tagPrefix}${nextTag++}`;
    const answer = new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(tag);
        resolve(null);
      }, REPLY_WAIT_MS);
      pending.set(tag, (lines) => {
        clearTimeout(timer);
        resolve(lines);
      });
    });
    client.publish(`chat/x/${name}/${tag}`, payload, { qos: 1 }).catch(() => {});
    return answer;
  }

  function onMessage(topic, bytes) {
    const text = new TextDecoder().decode(bytes);
    const inbox = `chat/u/${user}/d/`;
    if (topic.startsWith("chat/r/")) {
      roomEvent(topic.slice(7), text);
    } else if (topic.startsWith(inbox)) {
      roomEvent(`@${topic.slice(inbox.length)}`, text);
    } else if (topic === `chat/u/${user}`) {
      refused(text.split("\n"));
    } else if (topic.startsWith(`chat/u/${user}/`)) {
      const tag = topic.slice(`chat/u/${user}/`.length);
      const resolve = pending.get(tag);
      if (resolve) {
        pending.delete(tag);
        resolve(text.split("\n"));
      } else if (text.startsWith("ok read ")) {
        const [, , name, id] = text.split(" ");
        readElsewhere(name, Number(id));
      }
    }
  }

  // --- rooms and messages -------------------------------------------------------------

  /// `<id> <time> <sender> <text>` or `l <id> <likes> +<user>|-<user>`.
  function roomEvent(name, text) {
    const r = room(name);
    if (text.startsWith("l ")) {
      const [, id, likes, who] = text.split(" ");
      const m = r.messages.get(Number(id));
      if (m) {
        m.likes = Number(likes);
        if (who && who[0] === "+") m.likers.add(who.slice(1));
        if (who && who[0] === "-") m.likers.delete(who.slice(1));
        if (name === current) updateLikes(m);
      }
      return;
    }
    if (/^[jqof] /.test(text)) {
      for (const line of text.split("\n")) applyPresence(r, line);
      if (name === current) renderMembers();
      return;
    }
    const m = parseMessage(text);
    if (!m || r.messages.has(m.id)) return;
    addMessages(name, [m], false);
    if (r.syncedOn && r.syncedOn === client) r.synced = Math.max(r.synced, m.id);
    r.count += 1;
    if (m.sender !== user && (name !== current || document.hidden)) {
      if (name !== current) r.unread += 1;
      else r.hiddenUnread = (r.hiddenUnread || 0) + 1;
      if (name !== current) renderRooms();
      notify(name, m);
    } else if (name === current) {
      markRead(name);
    }
    updateTitle();
  }

  const mentions = (text) => new RegExp(`(^|[^\\w.-])@${user.replace(/[.]/g, "\\.")}(?![\\w.-])`).test(text);

  /// A direct message or an @mention while the tab is hidden: a browser notification, if
  /// the user allowed them and the room is not muted.
  function notify(name, m) {
    if (!document.hidden || muted(name)) return;
    if (!(isDirect(name) || mentions(m.text))) return;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const n = new Notification(isDirect(name) ? m.sender : `${m.sender} in ${name}`, {
      body: m.text, tag: `outpost-chat-${name}`,
    });
    n.onclick = () => {
      window.focus();
      select(name);
    };
  }

  /// The title counts unread messages of rooms not muted: `(3) Chat`.
  function updateTitle() {
    let n = 0;
    for (const [name, r] of rooms) if (!muted(name)) n += r.unread + (r.hiddenUnread || 0);
    document.title = n ? `(${n}) ${TITLE}` : TITLE;
  }

  function parseMessage(text) {
    const parts = text.split(" ");
    if (parts.length < 4 || !/^\d+$/.test(parts[0])) return null;
    return {
      id: Number(parts[0]), time: Number(parts[1]), sender: parts[2],
      text: parts.slice(3).join(" "), likes: 0, likers: new Set(),
    };
  }

  /// A history reply: `ok N messages`, then `<id> <time|+delta> <sender> <likers> <text>`
  /// rows, oldest first, then `more` if the page is full and more remain.
  function parsePage(lines) {
    if (lines && lines[0].startsWith("unknown_room")) return { rows: [], more: false };
    if (!lines || !lines[0].startsWith("ok")) return null;
    const rows = [];
    let time = 0;
    let more = false;
    for (const line of lines.slice(1)) {
      if (line === "more") { more = true; continue; }
      const parts = line.split(" ");
      if (parts.length < 5) continue;
      time = parts[1].startsWith("+") ? time + Number(parts[1].slice(1)) : Number(parts[1]);
      const likers = new Set(parts[3] === "0" ? [] : parts[3].split(","));
      rows.push({
        id: Number(parts[0]), time, sender: parts[2], likes: likers.size, likers,
        text: parts.slice(4).join(" "),
      });
    }
    return { rows, more };
  }

  /// Adds what the room does not hold yet (a catch-up page can overlap what came live
  /// while it was asked for) and shows those, each once.
  function addMessages(name, list, older) {
    const r = room(name);
    const fresh = list.filter((m) => !r.messages.has(m.id));
    for (const m of fresh) {
      r.messages.set(m.id, m);
      r.newest = Math.max(r.newest, m.id);
      r.oldest = r.oldest ? Math.min(r.oldest, m.id) : m.id;
      if (m.sender === user) echoed(name, m);
    }
    if (name === current) renderMessages(fresh, older);
    return fresh;
  }

  async function refreshRooms() {
    const link = client;
    const lines = await request("rooms", "");
    if (!lines || !lines[0].startsWith("ok")) {
      // No answer on a link still up: ask again rather than show no rooms.
      if (link && client === link) setTimeout(() => client === link && refreshRooms(), 3000);
      return;
    }
    for (const line of lines.slice(1)) {
      // <name> <members> <messages> [m] [u<unread>]
      const [name, members, count, ...flags] = line.split(" ");
      if (!name) continue;
      const r = room(name);
      r.members = Number(members);
      r.count = Number(count);
      r.member = flags.includes("m");
      // The server's count since the user's read marker, on any device; without one (a
      // room never marked read) the page counts what it sees come.
      const u = flags.find((f) => /^u\d+$/.test(f));
      r.counted = !!u;
      if (u && name !== current) {
        r.unread = Number(u.slice(1));
        r.unreadMore = r.unread >= UNREAD_MAX;
      }
    }
    if (!current) {
      const wanted = roomInAddress();
      const first = rooms.has(wanted) ? wanted : [...rooms.keys()].sort()[0];
      if (first) await select(first);
    }
    renderRooms();
    updateTitle();
  }

  /// The room the address names after `#`, or "" (none, or not decodable).
  function roomInAddress() {
    try {
      return decodeURIComponent(location.hash.slice(1));
    } catch {
      return "";
    }
  }

  /// `blocks`: whom this user blocked, so the Block button is right after a reload.
  async function loadBlocks() {
    const lines = await request("blocks", "");
    if (!lines || !lines[0].startsWith("ok")) return;
    blocked = new Set((lines[1] || "").split(" ").filter(Boolean));
    if (current && isDirect(current)) showBlocked(blocked.has(current.slice(1)));
  }

  /// After a (re)connect: everything said in a loaded room while the link was down, and
  /// in any room the outbox sent to (so that its echoes are found). False when a reply
  /// did not come.
  async function catchUp(link) {
    for (const [name, r] of rooms) {
      const sent = outbox.some((e) => e.room === name && e.state !== "queued");
      if (!sent && !r.loaded) continue;
      if (!r.loaded) {
        await loadOlder(name);
        if (!r.loaded) return false;
      }
      if (r.syncedOn === link) continue;
      for (;;) {
        const page = parsePage(await request("history", `${name} after ${r.synced} ${PAGE}`));
        if (!page) return false;
        const fresh = addMessages(name, page.rows, false);
        // A room the server counts for (its read marker) already counts these.
        if (name !== current && !r.counted) r.unread += fresh.filter((m) => m.sender !== user).length;
        if (page.rows.length) r.synced = Math.max(r.synced, page.rows[page.rows.length - 1].id);
        if (!page.more || !page.rows.length) break;
      }
      r.syncedOn = link;
      if (name === current) markRead(name);
    }
    renderRooms();
    return true;
  }

  async function select(name) {
    current = name;
    const r = room(name);
    r.unread = 0;
    r.unreadMore = false;
    location.hash = encodeURIComponent(name);
    r.hiddenUnread = 0;
    ui.title.textContent = isDirect(name) ? `${name.slice(1)} (direct)` : name;
    ui.mute.setAttribute("aria-pressed", String(muted(name)));
    ui.mute.textContent = muted(name) ? "Muted" : "Mute";
    ui.block.hidden = !isDirect(name);
    showBlocked(isDirect(name) && blocked.has(name.slice(1)));
    ui.list.replaceChildren(...outbox.filter((e) => e.room === name).map(pendingItem));
    ui.older.hidden = !r.loaded || !r.more;
    renderMessages([...r.messages.values()].sort((a, b) => a.id - b.id), false);
    ui.list.scrollTop = ui.list.scrollHeight;
    pinned = true;
    renderRooms();
    renderMembers();
    updateTitle();
    if (!r.loaded) await loadOlder(name);
    if (!r.loaded) retryLoad(name);
    markRead(name);
    ui.text.focus();
    await join(name);
    await loadMembers(name);
  }

  /// A first page that got no answer (its reply lost on a bad link, or too slow): asked
  /// again every few seconds while the room is shown and the link is up.
  function retryLoad(name) {
    setTimeout(async () => {
      if (current !== name || room(name).loaded || !client) return;
      await loadOlder(name);
      if (room(name).loaded) markRead(name);
      else retryLoad(name);
    }, 3000);
  }

  async function loadOlder(name) {
    const r = room(name);
    if (!r.more || r.loading) return;
    r.loading = true;
    // The first page is the newest one, even when messages came live before it.
    const first = !r.loaded;
    const anchor = first ? "" : `before ${r.oldest} `;
    const page = parsePage(await request("history", `${name} ${anchor}${PAGE}`));
    r.loading = false;
    if (!page) return; // offline or no reply: the next select or catch-up asks again
    if (first && page.more && page.rows.length) forgetBefore(name, page.rows[0].id);
    r.loaded = true;
    r.more = page.more;
    // In id order among what came live; older pages go on top.
    addMessages(name, page.rows, !first);
    if (first) {
      // Everything up to the page's newest is here now, and what comes later comes live.
      if (page.rows.length) r.synced = Math.max(r.synced, page.rows[page.rows.length - 1].id);
      r.syncedOn = client;
    }
    if (name === current) {
      ui.older.hidden = !r.more;
      // The button just shown shrinks the list: the newest message must stay in view.
      if (first) ui.list.scrollTop = ui.list.scrollHeight;
    }
  }

  /// Drops the messages before `id` that came live before the room's first page: they
  /// may not join up with it, and come back, in order, with the older pages.
  function forgetBefore(name, id) {
    const r = room(name);
    for (const old of [...r.messages.keys()].filter((k) => k < id)) {
      r.messages.delete(old);
      if (name === current) ui.list.querySelector(`li[data-id="${old}"]`)?.remove();
    }
    r.oldest = r.messages.size ? Math.min(...r.messages.keys()) : 0;
  }

  /// The user has seen `name` up to its newest message: tell the server (`read`), so
  /// every page and device of the user stops counting it unread. At most once per
  /// READ_DELAY_MS per room, and only forward; the server writes markers in batches.
  function markRead(name) {
    const r = room(name);
    if (document.hidden || !r.newest || r.newest <= (r.readSent || 0) || r.readTimer) return;
    r.readTimer = setTimeout(async () => {
      r.readTimer = null;
      const id = r.newest;
      if (id <= (r.readSent || 0)) return;
      const lines = await request("read", `${name} ${id}`);
      // Refused or lost: the next time the room is shown tries again.
      if (lines && lines[0].startsWith("ok")) r.readSent = Math.max(r.readSent || 0, Number(lines[0].split(" ")[3]));
    }, READ_DELAY_MS);
  }

  /// Another page or device of this user read `name` up to `id` (`ok read <room> <id>`).
  function readElsewhere(name, id) {
    const r = rooms.get(name);
    if (!r) return;
    r.readSent = Math.max(r.readSent || 0, id);
    const after = [...r.messages.values()].filter((m) => m.id > id && m.sender !== user).length;
    r.unread = Math.min(r.unread, after);
    r.hiddenUnread = Math.min(r.hiddenUnread || 0, after);
    r.unreadMore = false;
    renderRooms();
    updateTitle();
  }

  // --- rendering (textContent only) ---------------------------------------------------

  function renderRooms() {
    const items = [...rooms.keys()].sort().map((name) => {
      const r = rooms.get(name);
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "room";
      button.dataset.room = name;
      if (name === current) button.setAttribute("aria-current", "true");
      if (isDirect(name)) button.classList.add("dm");
      const label = document.createElement("span");
      label.textContent = isDirect(name) ? name.slice(1) : name;
      button.append(label);
      if (r.unread && name !== current) {
        const badge = document.createElement("span");
        badge.className = "unread";
        badge.textContent = `${r.unread}${r.unreadMore ? "+" : ""}`;
        badge.title = "unread messages";
        button.append(badge);
      }
      button.addEventListener("click", () => select(name));
      li.append(button);
      return li;
    });
    ui.rooms.replaceChildren(...items);
  }

  /// The current room's members, online first, each with a dot.
  function renderMembers() {
    const r = current && room(current);
    if (!r) return keepingBottom(() => ui.members.replaceChildren());
    // A direct conversation shows the peer, online or not.
    const names = isDirect(current)
      ? [current.slice(1)]
      : [...r.memberNames].sort((a, b) => r.online.has(b) - r.online.has(a) || a.localeCompare(b));
    keepingBottom(() =>
      ui.members.replaceChildren(...names.map((n) => {
        const li = document.createElement("li");
        li.textContent = n;
        li.dataset.name = n;
        li.className = r.online.has(n) ? "online" : "offline";
        li.title = r.online.has(n) ? "online" : "offline";
        return li;
      })),
    );
  }

  /// A text with its http(s) links made clickable: text nodes and anchors, never HTML.
  function linkify(p, text) {
    let at = 0;
    for (const match of text.matchAll(URL_RE)) {
      const url = match[0].replace(/[.,;:!?)\]]+$/, "");
      p.append(text.slice(at, match.index));
      const a = document.createElement("a");
      a.href = url;
      a.textContent = url;
      a.rel = "noopener noreferrer";
      a.target = "_blank";
      p.append(a);
      at = match.index + url.length;
    }
    p.append(text.slice(at));
  }

  function messageItem(m) {
    const li = document.createElement("li");
    li.className = "message";
    li.dataset.id = String(m.id);
    if (m.sender === user) li.classList.add("mine");
    const head = document.createElement("div");
    head.className = "meta";
    const who = document.createElement("span");
    who.className = "sender";
    who.textContent = m.sender;
    const when = document.createElement("time");
    const date = new Date(m.time * 1000);
    when.dateTime = date.toISOString();
    when.textContent = date.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
    head.append(who, when);
    const body = document.createElement("p");
    body.className = "text";
    linkify(body, m.text);
    const like = document.createElement("button");
    like.type = "button";
    like.className = "like";
    like.dataset.time = String(m.time);
    like.addEventListener("click", () => request("like", String(m.id)));
    // A long press (or right click) shows who liked it; hovering shows it as the title.
    like.addEventListener("contextmenu", (e) => {
      e.preventDefault();
      like.textContent = m.likers.size ? `♥ ${[...m.likers].sort().join(", ")}` : "♡ nobody yet";
      setTimeout(() => updateLikes(m, like), 3000);
    });
    li.append(head, body, like);
    updateLikes(m, like);
    return li;
  }

  /// A message of the outbox: "sending…" until its echo replaces it; refused, it says why
  /// and offers to retry or discard.
  function pendingItem(e) {
    const li = document.createElement("li");
    li.className = "message mine pending";
    li.dataset.pending = String(e.key);
    const head = document.createElement("div");
    head.className = "meta";
    const who = document.createElement("span");
    who.className = "sender";
    who.textContent = user;
    const state = document.createElement("span");
    state.className = "state";
    head.append(who, state);
    const body = document.createElement("p");
    body.className = "text";
    body.textContent = e.text;
    li.append(head, body);
    fillPending(li, e);
    return li;
  }

  function fillPending(li, e) {
    const failed = e.state === "failed";
    li.classList.toggle("failed", failed);
    li.querySelector(".state").textContent = failed ? `not sent: ${e.reason}` : "sending…";
    li.querySelectorAll(".actions").forEach((a) => a.remove());
    if (!failed) return;
    const actions = document.createElement("div");
    actions.className = "actions";
    const again = document.createElement("button");
    again.type = "button";
    again.className = "retry";
    again.textContent = "Retry";
    again.addEventListener("click", () => {
      e.state = "queued";
      outbox.splice(outbox.indexOf(e), 1);
      outbox.push(e); // after what was queued meanwhile, where it now sits on the page
      ui.list.append(li);
      fillPending(li, e);
      pump();
    });
    const drop = document.createElement("button");
    drop.type = "button";
    drop.className = "discard";
    drop.textContent = "Discard";
    drop.addEventListener("click", () => {
      outbox.splice(outbox.indexOf(e), 1);
      li.remove();
    });
    actions.append(again, drop);
    li.append(actions);
  }

  const pendingElement = (e) => ui.list.querySelector(`li[data-pending="${e.key}"]`);

  function renderPending(e) {
    const li = pendingElement(e);
    if (li) fillPending(li, e);
  }

  function updateLikes(m, button) {
    const b = button || ui.list.querySelector(`li[data-id="${m.id}"] .like`);
    if (!b) return;
    const mine = m.likers.has(user);
    b.textContent = m.likes ? `${mine ? "♥" : "♡"} ${m.likes}` : "♡";
    b.classList.toggle("idle", !m.likes);
    b.setAttribute("aria-pressed", String(mine));
    b.setAttribute("aria-label", mine ? `unlike (${m.likes} likes)` : `like (${m.likes} likes)`);
    b.title = m.likers.size ? `liked by ${[...m.likers].sort().join(", ")}` : "like";
  }

  /// Consecutive messages of one sender within 5 minutes share one header; a line marks
  /// each new day.
  function regroup() {
    ui.list.querySelectorAll("li.day").forEach((d) => d.remove());
    let last = null;
    for (const li of [...ui.list.children]) {
      if (!li.dataset.id) continue;
      const m = room(current).messages.get(Number(li.dataset.id));
      if (!m) continue;
      const day = new Date(m.time * 1000).toDateString();
      if (!last || new Date(last.time * 1000).toDateString() !== day) {
        const sep = document.createElement("li");
        sep.className = "day";
        sep.textContent = new Date(m.time * 1000).toLocaleDateString([], { dateStyle: "medium" });
        ui.list.insertBefore(sep, li);
        last = null;
      }
      li.classList.toggle("grouped", !!last && last.sender === m.sender && m.time - last.time < 300);
      last = m;
    }
  }

  function renderMessages(list, older) {
    if (!list.length) return;
    const atBottom = ui.list.scrollHeight - ui.list.scrollTop - ui.list.clientHeight < 40;
    const before = ui.list.scrollHeight;
    const items = list.map(messageItem);
    if (older) {
      ui.list.prepend(...items);
    } else {
      // Keep id order even when catch-up rows arrive after live ones; the outbox stays last.
      for (const item of items) {
        const id = Number(item.dataset.id);
        const later = [...ui.list.children].find((c) => c.dataset.pending || Number(c.dataset.id) > id);
        ui.list.insertBefore(item, later || null);
      }
    }
    regroup();
    if (older) ui.list.scrollTop += ui.list.scrollHeight - before;
    else if (atBottom) ui.list.scrollTop = ui.list.scrollHeight;
  }

  // --- input --------------------------------------------------------------------------

  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = ui.text.value.trim();
    if (!text || !current) return;
    ui.text.value = "";
    queueMessage(current, text);
  });

  const ROOM_NAME = /^@?[A-Za-z0-9_.-]{1,32}$/;

  ui.newRoom.addEventListener("submit", (e) => {
    e.preventDefault();
    const input = ui.newRoom.querySelector("input");
    const name = input.value.trim();
    if (!ROOM_NAME.test(name)) {
      input.setCustomValidity("1 to 32 letters, digits, _ - . (or @ and a user name)");
      input.reportValidity();
      return;
    }
    input.value = "";
    select(name); // a room that exists shows its history; a new one is made by its first message
  });

  // The address names the room shown: a link to /chat#<room>, an edited address, or Back
  // and Forward through the rooms visited open that room on the page already open. (Read
  // when it fires, not from the event: select() writes the address too.)
  window.addEventListener("hashchange", () => {
    const name = roomInAddress();
    if (name !== current && ROOM_NAME.test(name)) select(name);
  });

  // A complaint about one name must not block the next: the form checks on submit.
  ui.newRoom.querySelector("input").addEventListener("input", (e) => e.target.setCustomValidity(""));
  ui.older.addEventListener("click", () => current && loadOlder(current));
  new ResizeObserver(() => {
    if (pinned) ui.list.scrollTop = ui.list.scrollHeight;
  }).observe(ui.list);
  ui.list.addEventListener("scroll", () => {
    pinned = ui.list.scrollHeight - ui.list.scrollTop - ui.list.clientHeight < 40;
    if (ui.list.scrollTop < 30 && current) loadOlder(current);
  });

  function showBlocked(blocked) {
    ui.block.setAttribute("aria-pressed", String(blocked));
    ui.block.textContent = blocked ? "Unblock" : "Block";
  }
  /// In a direct conversation: stop (or again take) the other's direct messages.
  ui.block.addEventListener("click", async () => {
    if (!current || !isDirect(current)) return;
    const peer = current.slice(1);
    const lines = await request(blocked.has(peer) ? "unblock" : "block", peer);
    if (!lines || !lines[0].startsWith("ok")) return;
    if (lines[0].startsWith("ok blocked")) blocked.add(peer);
    else blocked.delete(peer);
    showBlocked(blocked.has(peer));
  });
  ui.reconnect.addEventListener("click", () => {
    clearTimeout(retryTimer);
    connect();
  });
  ui.mute.addEventListener("click", () => {
    if (!current) return;
    if (muted(current)) localStorage.removeItem(muteKey(current));
    else localStorage.setItem(muteKey(current), "1");
    ui.mute.setAttribute("aria-pressed", String(muted(current)));
    ui.mute.textContent = muted(current) ? "Muted" : "Mute";
    updateTitle();
  });
  if ("Notification" in window && Notification.permission === "default") {
    ui.notify.hidden = false;
    ui.notify.addEventListener("click", async () => {
      await Notification.requestPermission();
      ui.notify.hidden = true;
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden || !current) return;
    room(current).hiddenUnread = 0;
    markRead(current);
    updateTitle();
  });

  connect();
})();
