// Outpost admin console: keeps the server-rendered tables live and draws the rate charts
// from successive /api/stats snapshots. Polls only while the page is visible; builds every
// cell with textContent, never HTML, so no broker text can become markup.
"use strict";

(function () {
  const PERIOD_MS = 3000;
  const POINTS = 60;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const topic = new URLSearchParams(location.search).get("topic") || "";
  // Kept across reloads (every admin form reloads the page) unless stale.
  const saved = restore();
  const history = saved ? saved.history : { messages: [], bytes: [], connections: [] };
  let last = saved ? saved.last : null;
  let timer = null;
  // Cut off when the page is left: the browser would fail a refresh still under way with
  // "Failed to fetch" after the page is gone (reload, form, link), which is no failure.
  let leaving = new AbortController();

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function code(text) { return el("code", text); }

  // A topic or filter with a break opportunity after each "/" (phones wrap between levels).
  function topicCode(text) {
    const c = el("code", undefined, "topic");
    String(text).split("/").forEach((level, i) => {
      if (i > 0) c.append("/", el("wbr"));
      c.append(level);
    });
    return c;
  }

  // One timestamp format: the browser's local time, UTC on hover.
  function time(ms) {
    const d = new Date(ms);
    const t = el("time", d.toLocaleString());
    t.dateTime = d.toISOString();
    t.title = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    return t;
  }

  function localTimes(root) {
    for (const t of root.querySelectorAll("time[datetime]")) {
      const secs = Number(t.getAttribute("datetime"));
      if (Number.isFinite(secs) && secs > 0) t.replaceWith(time(secs * 1000));
    }
  }

  function duration(secs) {
    const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24;
    const m = Math.floor(secs / 60) % 60, s = Math.floor(secs % 60);
    if (d > 0) return d + "d " + h + "h " + m + "m";
    if (h > 0) return h + "h " + m + "m";
    return m + "m " + s + "s";
  }

  function postForm(action, fields, label, cls, confirmText) {
    const form = el("form");
    form.method = "post";
    form.action = action;
    if (confirmText) form.dataset.confirm = confirmText;
    const all = Object.assign({ csrf: csrf }, fields);
    for (const name of Object.keys(all)) {
      const input = el("input");
      input.type = "hidden";
      input.name = name;
      input.value = all[name];
      form.appendChild(input);
    }
    const button = el("button", label, cls);
    button.type = "submit";
    form.appendChild(button);
    return form;
  }

  // Search boxes over the live tables: rows whose text lacks every word are hidden, and
  // stay hidden when the table refreshes.
  function applyFilter(body) {
    const box = document.querySelector('.table-filter[data-rows="' + body.id + '"]');
    const words = box ? box.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    for (const tr of body.rows) {
      const text = tr.textContent.toLowerCase();
      tr.hidden = words.length > 0 && !words.every((w) => text.includes(w));
    }
  }

  for (const box of document.querySelectorAll(".table-filter")) {
    box.hidden = false;
    box.addEventListener("input", () => applyFilter(document.getElementById(box.dataset.rows)));
  }

  // What each live table was last drawn from: an unchanged table is left alone, so its
  // buttons do not move under the pointer and the text selected in it stays.
  const drawn = new Map();

  function fill(id, rows, columns, build) {
    const body = document.getElementById(id);
    if (!body) return;
    const key = JSON.stringify(rows);
    if (drawn.get(id) === key) return;
    drawn.set(id, key);
    const fresh = document.createDocumentFragment();
    if (rows.length === 0) {
      const tr = el("tr");
      const td = el("td", body.dataset.empty || "nothing", "empty");
      td.colSpan = columns;
      tr.appendChild(td);
      fresh.appendChild(tr);
    }
    for (const row of rows) fresh.appendChild(build(row));
    body.replaceChildren(fresh);
    applyFilter(body);
  }

  function cell(tr, content, label) {
    const td = el("td");
    if (label) td.dataset.label = label;
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    tr.appendChild(td);
    return td;
  }

  function countText(rows) {
    return rows.total > rows.rows.length ? rows.rows.length + " of " + rows.total : String(rows.total);
  }

  async function get(path) {
    const response = await fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" }, signal: leaving.signal });
    if (response.status === 401) { location.href = "/login"; throw new Error("logged out"); }
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function showStats(stats) {
    for (const node of document.querySelectorAll("[data-stat]")) {
      const key = node.dataset.stat;
      const value = stats[key];
      if (value === undefined) continue;
      node.textContent = key.startsWith("bytes_") ? size(value)
        : key === "uptime_seconds" ? duration(value) : String(value);
    }
    const now = Date.now();
    if (last) {
      const dt = (now - last.at) / 1000;
      if (dt > 0) {
        const rate = (k) => Math.max(0, (stats[k] - last.stats[k]) / dt);
        push("messages", rate("messages_received"), rate("messages_sent"));
        push("bytes", rate("bytes_received"), rate("bytes_sent"));
        push("connections", stats.clients_connected, null);
      }
    } else {
      push("connections", stats.clients_connected, null);
    }
    last = { at: now, stats: stats };
    draw("messages"); draw("bytes"); draw("connections");
    try {
      sessionStorage.setItem("outpost-rates", JSON.stringify({ history: history, last: last }));
    } catch (e) { /* storage full or off: the charts just start afresh next time */ }
  }

  function restore() {
    try {
      const s = JSON.parse(sessionStorage.getItem("outpost-rates"));
      return s && s.last && Date.now() - s.last.at < 4 * PERIOD_MS ? s : null;
    } catch (e) {
      return null;
    }
  }

  function push(name, a, b) {
    const h = history[name];
    h.push([a, b]);
    if (h.length > POINTS) h.shift();
  }

  const UNITS = { messages: "msg/s", bytes: "B/s", connections: "clients" };

  function format(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return n >= 10 ? n.toFixed(0) : n.toFixed(1);
  }

  function value(name, n) {
    if (name === "bytes") return size(n) + "/s";
    return format(n) + " " + UNITS[name];
  }

  // One quantity per chart: the y axis is labelled with its unit at the top and 0 at the
  // bottom, the x axis spans the last POINTS samples (3 s apart) up to now, and the
  // caption shows the current values.
  function draw(name) {
    const svg = document.getElementById("chart-" + name);
    const h = history[name];
    const max = Math.max(1, ...h.map((p) => Math.max(p[0], p[1] ?? 0)));
    const ns = "http://www.w3.org/2000/svg";
    const grid = [0.25, 0.5, 0.75].map((f) => {
      const line = document.createElementNS(ns, "line");
      const y = (78 - f * 74).toFixed(1);
      line.setAttribute("x1", "0"); line.setAttribute("x2", "300");
      line.setAttribute("y1", y); line.setAttribute("y2", y);
      line.setAttribute("class", "grid");
      return line;
    });
    const lines = [0, 1].filter((i) => h.some((p) => p[i] !== null)).map((i) => {
      const points = h.map((p, x) => {
        const px = (POINTS - h.length + x) * (300 / (POINTS - 1));
        const py = 78 - (p[i] / max) * 74;
        return px.toFixed(1) + "," + py.toFixed(1);
      });
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", i === 0 ? "in" : "out");
      return line;
    });
    svg.replaceChildren(...grid, ...lines);
    const now = h[h.length - 1];
    const current = !now ? "" : now[1] === null ? "now " + value(name, now[0])
      : "now in " + value(name, now[0]) + ", out " + value(name, now[1]);
    document.getElementById("scale-" + name).textContent =
      "top " + value(name, max) + " · " + Math.round((POINTS - 1) * PERIOD_MS / 60000) + " min → now · " + current;
  }

  function showListeners(list) {
    fill("listener-rows", list, 5, (l) => {
      const tr = el("tr");
      cell(tr, l.kind, "kind");
      cell(tr, l.address, "address");
      const state = l.running ? "running" : "stopped";
      cell(tr, state, "state").className = "state-" + state;
      cell(tr, l.connections, "connections");
      const action = l.running ? "stop" : "start";
      const confirmText = l.running
        ? "Stop the " + l.kind + " listener on " + l.address + "? Its " + l.connections + " clients are disconnected."
        : null;
      cell(tr, postForm("/admin/listener", { id: l.id, action: action }, l.running ? "Stop" : "Start", action, confirmText));
      return tr;
    });
  }

  function size(bytes) {
    const units = ["KiB", "MiB", "GiB", "TiB"];
    if (bytes < 1024) return bytes + " B";
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return value.toFixed(1) + " " + units[unit];
  }

  function showBridges(list) {
    fill("bridge-rows", list, 11, (b) => {
      const tr = el("tr");
      tr.dataset.bridge = b.name;
      cell(tr, code(b.name), "bridge");
      cell(tr, code(b.address), "upstream");
      cell(tr, b.protocol, "MQTT");
      const state = b.connected ? "connected" : b.state === "idle" ? "idle" : "down";
      const link = el("span", state === "idle" ? "idle (lazy)" : state, "state-" + state);
      if (b.connected && b.connected_since) {
        link.append(" since ", time(b.connected_since * 1000));
      }
      cell(tr, link, "link");
      cell(tr, b.queued + " (" + size(b.queued_bytes) + ")", "queued");
      cell(tr, b.forwarded, "forwarded");
      cell(tr, b.received, "received");
      cell(tr, b.dropped, "dropped");
      cell(tr, b.connects, "connects");
      cell(tr, size(b.max_queue_bytes) + ", " + b.queue_full, "disk budget");
      cell(tr, b.last_error ? el("span", b.last_error, "bridge-error") : "—", "last error");
      return tr;
    });
  }

  function showClients(rows) {
    document.getElementById("clients-total").textContent = countText(rows);
    fill("client-rows", rows.rows, 10, (c) => {
      const tr = el("tr");
      const detail = el("a");
      detail.href = "/admin/client?id=" + encodeURIComponent(c.client_id);
      detail.appendChild(code(c.client_id));
      cell(tr, detail, "client");
      cell(tr, c.username || "—", "user");
      cell(tr, c.address, "address");
      cell(tr, c.protocol, "MQTT");
      cell(tr, c.keep_alive + " s", "keep alive");
      cell(tr, c.connected_since ? time(c.connected_since * 1000) : "—", "since");
      cell(tr, size(c.bytes_in) + " / " + size(c.bytes_out), "in/out");
      const subs = el("span");
      if (c.subscriptions.length === 0) subs.textContent = "—";
      c.subscriptions.forEach((s, i) => {
        if (i > 0) subs.appendChild(el("br"));
        subs.appendChild(topicCode(s.filter));
        subs.appendChild(document.createTextNode(" q" + s.qos));
      });
      cell(tr, subs, "subscriptions");
      cell(tr, c.inflight + " / " + c.queued, "in flight / queued");
      cell(tr, postForm("/admin/disconnect", { client_id: c.client_id }, "Disconnect", "stop", "Disconnect client " + c.client_id + "?"));
      return tr;
    });
  }

  function showFilters(rows) {
    document.getElementById("filters-total").textContent = countText(rows);
    fill("filter-rows", rows.rows, 2, (f) => {
      const tr = el("tr");
      cell(tr, topicCode(f.filter));
      const who = el("span");
      f.subscribers.forEach((s, i) => {
        if (i > 0) who.appendChild(document.createTextNode(", "));
        who.appendChild(code(s.client_id));
        who.appendChild(document.createTextNode(" q" + s.qos + (s.online ? "" : " (offline)")));
      });
      cell(tr, who);
      return tr;
    });
  }

  function showTopics(rows) {
    document.getElementById("topics-total").textContent = countText(rows);
    document.dispatchEvent(new CustomEvent("outpost:topics", { detail: rows }));
    fill("topic-rows", rows.rows, 3, (t) => {
      const tr = el("tr");
      const a = el("a");
      a.href = "/admin?topic=" + encodeURIComponent(t.topic) + "#last";
      a.appendChild(topicCode(t.topic));
      cell(tr, a);
      cell(tr, t.messages);
      cell(tr, time(t.last_ms));
      return tr;
    });
  }

  function showSessions(rows) {
    document.getElementById("sessions-total").textContent = countText(rows);
    fill("session-rows", rows.rows, 6, (s) => {
      const tr = el("tr");
      tr.dataset.session = s.client_id;
      cell(tr, code(s.client_id), "client");
      cell(tr, s.username || "—", "user");
      cell(tr, s.expiry_interval === null ? "never"
        : s.expires_at ? time(s.expires_at * 1000) : s.expiry_interval + " s after its disconnect", "expires");
      cell(tr, s.queued, "queued");
      const subs = el("span");
      if (s.subscriptions.length === 0) subs.textContent = "—";
      s.subscriptions.forEach((f, i) => {
        if (i > 0) subs.appendChild(el("br"));
        subs.append(topicCode(f.filter), " q" + f.qos);
      });
      cell(tr, subs, "subscriptions");
      cell(tr, postForm("/admin/sessions/delete", { client_id: s.client_id }, "Delete", "stop",
        "Delete the session of " + s.client_id + " with its " + s.queued + " queued messages?"));
      return tr;
    });
  }

  // A ban's kind as the server's rows name it.
  const BAN_KINDS = { client_id: "client id", username: "user", address: "address" };

  function showBans(list) {
    fill("ban-rows", list, 6, (b) => {
      const tr = el("tr");
      const kind = BAN_KINDS[b.kind] || b.kind;
      tr.dataset.ban = b.id;
      cell(tr, kind, "kind");
      cell(tr, code(b.value), "banned");
      cell(tr, b.reason || "—", "reason");
      const by = el("span", b.created_by + ", ");
      by.append(time(b.created_at * 1000));
      cell(tr, by, "by");
      let expires = el("span", "until lifted");
      if (b.expires_at !== null) {
        expires = el("span", b.in_force ? "until " : "expired ", b.in_force ? undefined : "hint");
        expires.append(time(b.expires_at * 1000));
      }
      cell(tr, expires, "expires");
      cell(tr, postForm("/admin/bans/delete", { id: b.id }, "Lift", "secondary",
        "Lift the ban on " + kind + " " + b.value + "?"));
      return tr;
    });
  }

  function showMessages(list) {
    fill("message-rows", list, 5, (m) => {
      const tr = el("tr");
      cell(tr, time(m.at_ms), "time");
      cell(tr, m.qos, "QoS");
      cell(tr, m.retain ? "yes" : "no", "retained");
      cell(tr, m.size, "bytes");
      const v = m.payload;
      const shown = el("pre", v.json !== null ? v.json : v.text !== null ? v.text : v.hex, "payload");
      shown.dataset.kind = v.json !== null ? "json" : v.text !== null ? "text" : "hex";
      const box = el("div");
      box.append(shown);
      if (v.truncated) box.append(el("span", " (first " + size(m.kept) + " of " + size(m.size) + ")", "hint"));
      const props = propertyList(m.properties);
      if (props) box.append(props);
      if (m.properties_dropped) box.append(el("p", "(its properties were too long to keep)", "hint"));
      cell(tr, box, "payload");
      return tr;
    });
  }

  async function refresh() {
    try {
      const [stats, listeners, clients, sessions, filters, topics, bans] = await Promise.all([
        get("/api/stats"), get("/api/listeners"), get("/api/clients"), get("/api/sessions"),
        get("/api/subscribers"), get("/api/topics"), get("/api/bans"),
      ]);
      showStats(stats);
      showListeners(listeners);
      showClients(clients);
      showSessions(sessions);
      showFilters(filters);
      showTopics(topics);
      showBans(bans);
      // Bridges are fixed at start: without one at load there is nothing to poll.
      if (document.getElementById("bridge-rows")) showBridges(await get("/api/bridges"));
      if (topic) {
        const response = await fetch("/api/topics/messages?topic=" + encodeURIComponent(topic), { credentials: "same-origin", signal: leaving.signal });
        if (response.ok) showMessages(await response.json());
      }
      document.getElementById("live").hidden = false;
    } catch (e) {
      if (leaving.signal.aborted) return;
      console.warn("console refresh failed:", e);
      document.getElementById("live").hidden = true;
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    if (!document.hidden) {
      refresh();
      timer = setInterval(refresh, PERIOD_MS);
    }
  }

  // Watch: subscribe to a filter as the logged-in admin over MQTT-over-WebSocket (a
  // single-use token from /api/chat/token, as the chat page), only while asked to.
  const WATCH_MAX = 200;
  const watch = { client: null, paused: false, filter: "", held: [] };
  const watchState = document.getElementById("watch-state");
  const watchRows = document.getElementById("watch-rows");
  const buttons = {
    start: document.getElementById("watch-start"),
    pause: document.getElementById("watch-pause"),
    stop: document.getElementById("watch-stop"),
  };

  // Bytes of a watched payload shown at most, as on the server's viewer.
  const VIEW_CAP = 64 * 1024;

  function watchRow(topicName, payload, meta, at) {
    const tr = el("tr");
    cell(tr, time(at), "time");
    cell(tr, topicCode(topicName), "topic");
    cell(tr, meta.qos + (meta.retain ? " retained" : ""), "QoS");
    cell(tr, size(payload.length), "bytes");
    const view = el("div", undefined, "viewer");
    view.append(payloadView(payload.subarray(0, VIEW_CAP)));
    if (payload.length > VIEW_CAP) view.append(el("span", "(first " + size(VIEW_CAP) + " of " + size(payload.length) + ")", "hint"));
    const props = propertyList(meta.properties);
    if (props) view.append(props);
    view.append(hexToggle(payload.subarray(0, VIEW_CAP)));
    cell(tr, view, "payload");
    return tr;
  }

  function hexOf(bytes) {
    const lines = [];
    for (let at = 0; at < bytes.length; at += 16) {
      const row = bytes.subarray(at, at + 16);
      const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
      const ascii = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
      lines.push(at.toString(16).padStart(6, "0") + "  " + hex.padEnd(47) + "  " + ascii);
    }
    return lines.join("\n");
  }

  // A hex dump, made only when opened (a watch keeps up to 200 messages).
  function hexToggle(bytes) {
    const details = el("details", undefined, "hex");
    details.append(el("summary", "hex"));
    details.addEventListener("toggle", () => {
      if (details.open && details.children.length === 1) details.append(el("pre", hexOf(bytes), "payload"));
    });
    return details;
  }

  // The MQTT 5 properties of a watched or remembered message, or null when it has none.
  function propertyList(p) {
    if (!p) return null;
    const items = [];
    if (p.payload_format !== undefined) items.push(["payload format", p.payload_format === 1 ? "UTF-8 text" : "bytes"]);
    if (p.content_type !== undefined) items.push(["content type", p.content_type]);
    if (p.message_expiry !== undefined) items.push(["message expiry", p.message_expiry + " s"]);
    if (p.response_topic !== undefined) items.push(["response topic", p.response_topic]);
    if (p.correlation_data !== undefined) items.push(["correlation data", Array.from(p.correlation_data, (b) => b.toString(16).padStart(2, "0")).join(" ")]);
    if (p.subscription_ids) items.push(["subscription id", p.subscription_ids.join(", ")]);
    for (const [k, v] of p.user_properties || []) items.push([k, v]);
    if (items.length === 0) return null;
    const dl = el("dl", undefined, "props");
    for (const [k, v] of items) dl.append(el("dt", k), el("dd", v));
    return dl;
  }

  function payloadView(bytes) {
    let text = null;
    try { text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch (e) { text = null; }
    let kind = "text";
    if (text === null) {
      kind = "hex";
      text = hexOf(bytes);
    } else if (/^\s*[{[]/.test(text)) {
      try { text = JSON.stringify(JSON.parse(text), null, 2); kind = "json"; } catch (e) { /* plain text */ }
    }
    const pre = el("pre", text, "payload");
    pre.dataset.kind = kind;
    return pre;
  }

  function addWatched(tr) {
    if (watchRows.firstElementChild && watchRows.firstElementChild.querySelector(".empty")) watchRows.replaceChildren();
    watchRows.prepend(tr);
    while (watchRows.children.length > WATCH_MAX) watchRows.lastElementChild.remove();
  }

  function setWatchState(text) {
    watchState.textContent = text;
  }

  async function startWatch(filter) {
    await stopWatch();
    const reply = await fetch("/api/chat/token", {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" }, body: "{}",
    });
    if (!reply.ok) {
      const why = await reply.json().catch(() => ({}));
      setWatchState("cannot watch: " + (why.message || "HTTP " + reply.status));
      return;
    }
    const grant = await reply.json();
    const url = (location.protocol === "https:" ? "wss" : "ws") + "://" + location.hostname + ":" + grant.ws_port + grant.ws_path;
    const id = "console-watch-" + Math.random().toString(16).slice(2, 10);
    const client = new MqttWs({ url: url, clientId: id, username: grant.user, password: grant.token, keepAlive: 30, version: 5 });
    client.onmessage = (topicName, payload, meta) => {
      const tr = watchRow(topicName, payload, meta, Date.now());
      if (watch.paused) {
        watch.held.push(tr);
        if (watch.held.length > WATCH_MAX) watch.held.shift();
        setWatchState("paused on " + filter + " (" + watch.held.length + " held)");
      } else {
        addWatched(tr);
      }
    };
    client.onclose = (reason) => {
      if (watch.client === client) {
        watch.client = null;
        setWatchState("stopped: " + reason);
        buttons.pause.disabled = buttons.stop.disabled = true;
      }
    };
    watch.client = client;
    watch.filter = filter;
    watch.paused = false;
    watch.held = [];
    try {
      await client.connect();
      const granted = await client.subscribe([filter, 1]);
      if (granted[0] >= 0x80) {
        setWatchState("refused: your ACL rules do not let you read " + filter);
        await stopWatch();
        return;
      }
      setWatchState("watching " + filter);
      buttons.pause.disabled = buttons.stop.disabled = false;
      buttons.pause.textContent = "Pause";
    } catch (e) {
      setWatchState("cannot watch: " + e.message);
      if (watch.client === client) watch.client = null;
    }
  }

  async function stopWatch() {
    const client = watch.client;
    watch.client = null;
    if (client) client.close();
    buttons.pause.disabled = buttons.stop.disabled = true;
    if (watch.filter) setWatchState("stopped");
  }

  document.getElementById("watch-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const filter = document.getElementById("watch-filter").value.trim();
    if (filter) startWatch(filter);
  });
  buttons.pause.addEventListener("click", () => {
    watch.paused = !watch.paused;
    buttons.pause.textContent = watch.paused ? "Resume" : "Pause";
    if (!watch.paused) {
      for (const tr of watch.held) addWatched(tr);
      watch.held = [];
      setWatchState("watching " + watch.filter);
    } else {
      setWatchState("paused on " + watch.filter);
    }
  });
  buttons.stop.addEventListener("click", () => { stopWatch(); });
  window.addEventListener("pagehide", () => {
    if (watch.client) watch.client.close();
    clearInterval(timer);
    timer = null;
    leaving.abort();
  });
  // Back from the back/forward cache: live again.
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    leaving = new AbortController();
    schedule();
  });
  document.getElementById("watch-hint").textContent =
    "Subscribes as you (wildcards allowed, your ACL rules apply); keeps the last " + WATCH_MAX + " messages. Nothing is watched while nobody looks.";

  // With JavaScript the publish form goes through the API, so the page (and a running
  // watch) stays; the answer shows under the form. Without it, the form posts as usual.
  const publishForm = document.querySelector('form[action="/admin/publish"]');
  const publishNote = el("p", "", "hint");
  publishNote.id = "publish-result";
  publishNote.setAttribute("role", "status");
  publishForm.after(publishNote);
  publishForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(publishForm);
    const properties = [];
    for (const line of String(f.get("user_properties") || "").split("\n")) {
      if (!line.trim()) continue;
      const at = line.indexOf("=");
      if (at < 0) { showPublish(false, "user property " + JSON.stringify(line.trim()) + " is not name=value"); return; }
      properties.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
    }
    const body = {
      topic: String(f.get("topic") || ""),
      payload: String(f.get("payload") || ""),
      format: f.get("format") === "json" ? "json" : "text",
      qos: Number(f.get("qos")),
      retain: f.get("retain") !== null,
      user_properties: properties,
    };
    const contentType = String(f.get("content_type") || "").trim();
    if (contentType) body.content_type = contentType;
    const expiry = String(f.get("expiry") || "").trim();
    if (expiry) body.message_expiry = Number(expiry);
    try {
      const reply = await fetch("/api/publish", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      const answer = await reply.json();
      showPublish(reply.ok, reply.ok ? answer.done : answer.message);
    } catch (err) {
      showPublish(false, "not sent: " + err.message);
    }
  });

  function showPublish(ok, text) {
    publishNote.className = ok ? "notice" : "error";
    publishNote.textContent = text;
  }

  // Destructive forms (stop, disconnect, delete, demote) ask first.
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });
  localTimes(document);

  document.getElementById("message-rows").dataset.empty = topic ? "no messages seen on this topic" : "choose a topic above";
  document.getElementById("client-rows").dataset.empty = "no clients connected";
  document.getElementById("filter-rows").dataset.empty = "no subscriptions";
  document.getElementById("topic-rows").dataset.empty = "no messages yet";
  document.getElementById("session-rows").dataset.empty = "no offline sessions";
  document.getElementById("ban-rows").dataset.empty = "nobody is banned";
  document.getElementById("charts-hint").hidden = true;
  document.addEventListener("visibilitychange", schedule);
  schedule();
})();
