// Outpost client detail page: measures the client's message and byte rates from
// successive /api/clients/detail snapshots every 3 seconds while the page is visible,
// keeps its counters live, and asks before disconnect and ban. Text only, never HTML.
"use strict";

(function () {
  const PERIOD_MS = 3000;
  const id = new URLSearchParams(location.search).get("id") || "";
  let last = null;
  let timer = null;
  // Cut off when the page is left, where a refresh under way would fail with "Failed to
  // fetch" after the page is gone: no failure.
  let leaving = new AbortController();

  function size(bytes) {
    const units = ["KiB", "MiB", "GiB", "TiB"];
    if (bytes < 1024) return Math.round(bytes) + " B";
    let v = bytes / 1024, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u += 1; }
    return v.toFixed(1) + " " + units[u];
  }

  function set(selector, text) {
    const e = document.querySelector(selector);
    if (e) e.textContent = text;
  }

  function show(c, at) {
    set('[data-field="messages_in"]', c.messages_in);
    set('[data-field="messages_out"]', c.messages_out);
    set('[data-field="bytes_in"]', size(c.bytes_in));
    set('[data-field="bytes_out"]', size(c.bytes_out));
    set('[data-field="inflight"]', c.inflight);
    set('[data-field="queued"]', c.queued);
    set('[data-field="incoming_qos2"]', c.incoming_qos2);
    if (last) {
      const secs = Math.max((at - last.at) / 1000, 0.001);
      const rate = (now, before) => Math.max(now - before, 0) / secs;
      set('[data-rate="messages"]',
        rate(c.messages_in, last.c.messages_in).toFixed(1) + " / " + rate(c.messages_out, last.c.messages_out).toFixed(1));
      set('[data-rate="bytes"]',
        size(rate(c.bytes_in, last.c.bytes_in)) + "/s / " + size(rate(c.bytes_out, last.c.bytes_out)) + "/s");
      set("#rates-hint", "Rates measured over the last " + Math.round(secs) + " s.");
    }
    last = { c: c, at: at };
  }

  async function refresh() {
    const live = document.getElementById("live");
    try {
      const response = await fetch("/api/clients/detail?id=" + encodeURIComponent(id), { credentials: "same-origin", signal: leaving.signal });
      if (response.status === 404) {
        set("#live", "disconnected");
        live.hidden = false;
        live.classList.add("gone");
        clearInterval(timer);
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      show(await response.json(), Date.now());
      live.hidden = false;
    } catch (e) {
      if (leaving.signal.aborted) return;
      console.warn("client refresh failed:", e);
      live.hidden = true;
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

  // One timestamp format: the browser's local time, UTC on hover.
  for (const t of document.querySelectorAll("time[datetime]")) {
    const d = new Date(Number(t.getAttribute("datetime")) * 1000);
    t.textContent = d.toLocaleString();
    t.title = d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });
  document.addEventListener("visibilitychange", schedule);
  window.addEventListener("pagehide", () => {
    clearInterval(timer);
    timer = null;
    leaving.abort();
  });
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    leaving = new AbortController();
    schedule();
  });
  schedule();
})();
