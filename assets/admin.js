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

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function code(text) { return el("code", text); }

  function time(ms) {
    return new Date(ms).toLocaleString();
  }

  function postForm(action, fields, label, cls) {
    const form = el("form");
    form.method = "post";
    form.action = action;
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

  function fill(id, rows, columns, build) {
    const body = document.getElementById(id);
    if (!body) return;
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
    const response = await fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } });
    if (response.status === 401) { location.href = "/login"; throw new Error("logged out"); }
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function showStats(stats) {
    for (const node of document.querySelectorAll("[data-stat]")) {
      const value = stats[node.dataset.stat];
      if (value !== undefined) node.textContent = String(value);
    }
    const now = Date.now();
    if (last) {
      const dt = (now - last.at) / 1000;
      if (dt > 0) {
        const rate = (k) => Math.max(0, (stats[k] - last.stats[k]) / dt);
        push("messages", rate("messages_received"), rate("messages_sent"));
        push("bytes", rate("bytes_received"), rate("bytes_sent"));
        push("connections", stats.clients_connected, rate("connections_total"));
      }
    } else {
      push("connections", stats.clients_connected, 0);
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

  function draw(name) {
    const svg = document.getElementById("chart-" + name);
    const h = history[name];
    const max = Math.max(1, ...h.map((p) => Math.max(p[0], p[1])));
    const lines = [0, 1].map((i) => {
      const points = h.map((p, x) => {
        const px = (POINTS - h.length + x) * (300 / (POINTS - 1));
        const py = 78 - (p[i] / max) * 74;
        return px.toFixed(1) + "," + py.toFixed(1);
      });
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("class", i === 0 ? "in" : "out");
      return line;
    });
    svg.replaceChildren(...lines);
    document.getElementById("scale-" + name).textContent = "max " + format(max);
  }

  function format(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return n >= 10 ? n.toFixed(0) : n.toFixed(1);
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
      cell(tr, postForm("/admin/listener", { id: l.id, action: action }, l.running ? "Stop" : "Start", action));
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
      const link = !b.connected ? "down"
        : b.connected_since ? "connected since " + time(b.connected_since * 1000) : "connected";
      cell(tr, el("span", link, "state-" + (b.connected ? "connected" : "down")), "link");
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
      cell(tr, code(c.client_id), "client");
      cell(tr, c.username || "—", "user");
      cell(tr, c.address, "address");
      cell(tr, c.protocol, "MQTT");
      cell(tr, c.keep_alive + " s", "keep alive");
      cell(tr, c.connected_since ? time(c.connected_since * 1000) : "—", "since");
      cell(tr, c.bytes_in + " / " + c.bytes_out + " B", "in/out");
      const subs = el("span");
      if (c.subscriptions.length === 0) subs.textContent = "—";
      c.subscriptions.forEach((s, i) => {
        if (i > 0) subs.appendChild(el("br"));
        subs.appendChild(code(s.filter));
        subs.appendChild(document.createTextNode(" q" + s.qos));
      });
      cell(tr, subs, "subscriptions");
      cell(tr, c.inflight + " / " + c.queued, "in flight / queued");
      cell(tr, postForm("/admin/disconnect", { client_id: c.client_id }, "Disconnect", "stop"));
      return tr;
    });
  }

  function showFilters(rows) {
    document.getElementById("filters-total").textContent = countText(rows);
    fill("filter-rows", rows.rows, 2, (f) => {
      const tr = el("tr");
      cell(tr, code(f.filter));
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
    fill("topic-rows", rows.rows, 3, (t) => {
      const tr = el("tr");
      const a = el("a");
      a.href = "/admin?topic=" + encodeURIComponent(t.topic) + "#last";
      a.appendChild(code(t.topic));
      cell(tr, a);
      cell(tr, t.messages);
      cell(tr, time(t.last_ms));
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
      cell(tr, el("code", m.preview, "payload"), "payload");
      return tr;
    });
  }

  async function refresh() {
    try {
      const [stats, listeners, clients, filters, topics] = await Promise.all([
        get("/api/stats"), get("/api/listeners"), get("/api/clients"),
        get("/api/subscribers"), get("/api/topics"),
      ]);
      showStats(stats);
      showListeners(listeners);
      showClients(clients);
      showFilters(filters);
      showTopics(topics);
      // Bridges are fixed at start: without one at load there is nothing to poll.
      if (document.getElementById("bridge-rows")) showBridges(await get("/api/bridges"));
      if (topic) {
        const response = await fetch("/api/topics/messages?topic=" + encodeURIComponent(topic), { credentials: "same-origin" });
        if (response.ok) showMessages(await response.json());
      }
      document.getElementById("live").hidden = false;
    } catch (e) {
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

  document.getElementById("message-rows").dataset.empty = topic ? "no messages seen on this topic" : "choose a topic above";
  document.getElementById("client-rows").dataset.empty = "no clients connected";
  document.getElementById("filter-rows").dataset.empty = "no subscriptions";
  document.getElementById("topic-rows").dataset.empty = "no messages yet";
  document.getElementById("charts-hint").hidden = true;
  document.addEventListener("visibilitychange", schedule);
  schedule();
})();
