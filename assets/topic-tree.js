// Outpost admin console: the topic tree, like MQTT Explorer's. Built from the topic history
// that assets/admin.js fetches every 3 seconds (it sends it as an "outpost:topics" event),
// one node per topic level with the messages under it and the age of its last one;
// collapsible (the open nodes stay open across refreshes) and searchable. A node offers
// Watch (the level, with /# below it) and, for a topic, its last 10 messages.
// Text only, never HTML.
"use strict";

(function () {
  const box = document.getElementById("topic-tree");
  const search = document.getElementById("tree-search");
  const total = document.getElementById("tree-total");
  if (!box || !search) return;
  const open = new Set();
  let rows = [];

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function age(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " m ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }

  function node(name, path) {
    return { name: name, path: path, children: new Map(), messages: 0, last: 0, topic: null };
  }

  // The tree of the topics whose name holds every word of the search.
  function build(list, words) {
    const root = node("", "");
    root.topics = 0;
    for (const t of list) {
      const lower = t.topic.toLowerCase();
      if (!words.every((w) => lower.includes(w))) continue;
      let at = root;
      t.topic.split("/").forEach((level, i, levels) => {
        if (!at.children.has(level)) at.children.set(level, node(level, levels.slice(0, i + 1).join("/")));
        at = at.children.get(level);
        at.messages += t.messages;
        at.last = Math.max(at.last, t.last_ms);
      });
      at.topic = t;
      root.messages += t.messages;
      root.topics += 1;
    }
    return root;
  }

  function watchButton(filter) {
    const b = el("button", "Watch", "secondary small");
    b.type = "button";
    b.title = "watch " + filter;
    b.addEventListener("click", () => {
      const input = document.getElementById("watch-filter");
      const form = document.getElementById("watch-form");
      if (!input || !form) return;
      input.value = filter;
      form.requestSubmit();
      document.getElementById("watch").scrollIntoView();
    });
    return b;
  }

  function label(n) {
    const line = el("span", undefined, "tree-line");
    line.append(el("code", n.name === "" ? "(empty)" : n.name, "tree-name"));
    line.append(el("span", n.messages, "tree-count"));
    const when = el("span", age(n.last), "tree-age");
    when.title = new Date(n.last).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    line.append(when);
    if (n.topic) {
      const last = el("a", "last 10", "tree-last");
      last.href = "/admin?topic=" + encodeURIComponent(n.path) + "#last";
      line.append(last);
    }
    line.append(watchButton(n.children.size > 0 ? n.path + "/#" : n.path));
    return line;
  }

  function render(parent, n, expand) {
    const list = el("ul", undefined, "tree-level");
    const names = [...n.children.keys()].sort();
    for (const name of names) {
      const child = n.children.get(name);
      const item = el("li");
      item.dataset.path = child.path;
      if (child.children.size === 0) {
        item.append(label(child));
      } else {
        const details = el("details");
        details.open = expand || open.has(child.path);
        // A search opens every match; only what the admin opens by hand is remembered.
        if (!expand) {
          details.addEventListener("toggle", () => {
            if (details.open) open.add(child.path); else open.delete(child.path);
          });
        }
        const summary = el("summary");
        summary.append(label(child));
        details.append(summary);
        render(details, child, expand);
        item.append(details);
      }
      list.append(item);
    }
    parent.append(list);
  }

  function show() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const root = build(rows, words);
    box.replaceChildren();
    if (root.children.size === 0) {
      box.append(el("p", words.length ? "no topic matches" : "no messages yet", "empty"));
    } else {
      render(box, root, words.length > 0);
    }
    const shown = words.length ? root.topics + " of " + rows.length : String(rows.length);
    total.textContent = shown + " topics, " + root.messages + " messages";
  }

  document.addEventListener("outpost:topics", (e) => {
    rows = e.detail.rows;
    show();
  });
  search.hidden = false;
  search.addEventListener("input", show);
})();
