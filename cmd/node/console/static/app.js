// Strata console: a small single-page app over /console/api. No framework,
// no build step: it is served as it is written.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const main = () => $("#main");

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function showError(msg) {
  const e = $("#error");
  if (!msg) { e.hidden = true; e.textContent = ""; return; }
  e.hidden = false;
  e.textContent = msg;
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  let resp;
  try { resp = await fetch("/console/api" + path, opts); }
  catch (e) { throw new Error("The node did not answer: " + e.message); }
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) throw new Error((data && data.error) || (resp.status + " " + resp.statusText + ": " + text.slice(0, 300)));
  return data;
}

const fmt = {
  n: (v) => (v === undefined || v === null || v < 0) ? "-" : Number(v).toLocaleString("en-US"),
  bytes: (v) => {
    if (v === undefined || v === null) return "-";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; v = Number(v);
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v) + " " + u[i];
  },
  rate: (v, unit) => v === null ? "-" : (v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US")) + " " + unit + "/s",
  time: (ms) => ms ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : "-",
};

// Timers of the page on screen; cleared on every route change.
let timers = [];
function every(ms, fn) { const t = setInterval(fn, ms); timers.push(t); return t; }
function clearTimers() { timers.forEach(clearInterval); timers = []; }

function route() {
  clearTimers();
  showError("");
  const hash = decodeURIComponent(location.hash.slice(1) || "/");
  const parts = hash.split("/").filter(Boolean);
  document.querySelectorAll("header nav a").forEach((a) =>
    a.classList.toggle("active", a.dataset.nav === (parts[0] || "cluster")));
  const run = async () => {
    try {
      if (parts[0] === "topics" && parts[1]) await topicPage(parts.slice(1).join("/"));
      else if (parts[0] === "topics") await topicsPage();
      else if (parts[0] === "groups" && parts[1]) await groupPage(parts.slice(1).join("/"));
      else if (parts[0] === "groups") await groupsPage();
      else await clusterPage();
    } catch (e) { showError(e.message); }
  };
  run();
}
window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);

function render(...children) { main().replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)); }

// ---------- cluster ----------
async function clusterPage() {
  await drawCluster();
  every(5000, async () => { try { await drawCluster(); } catch (e) { showError(e.message); } });
}

async function drawCluster() {
  const c = await api("GET", "/cluster");
  $("#node").textContent = "node " + c.node_id;
  const etcd = c.etcd, os = c.object_store;
  render(
    h("h1", {}, "Cluster"),
    h("div", { class: "cards" },
      card("Live nodes", c.nodes.length),
      card("Topics", c.topics),
      card("Partitions", c.partitions),
      card("Without a leader", c.leaderless.length),
      card("etcd", etcd.ok ? "ok" : "problem", etcd.ok ? "ok" : "bad",
        fmt.bytes(etcd.db_size) + " (" + fmt.bytes(etcd.db_size_in_use) + " in use)" + (etcd.alarms.length ? " alarms: " + etcd.alarms.join(", ") : "") + (etcd.error ? " " + etcd.error : "")),
      card("Object store", os.ok ? "ok" : "problem", os.ok ? "ok" : "bad", (os.error || "") + " probe " + os.latency_ms.toFixed(1) + " ms"),
    ),
    h("h2", {}, "Nodes"),
    h("table", { id: "nodes" },
      h("tr", {}, h("th", {}, "Node"), h("th", {}, "Kafka"), h("th", {}, "HTTP"), h("th", {}, "Health"), h("th", { class: "num" }, "Leads"), h("th", {}, "Partitions led")),
      c.nodes.map((n) => h("tr", { "data-node": n.id },
        h("td", {}, n.id + (n.self ? " (this node)" : "")),
        h("td", {}, n.kafka), h("td", {}, n.http || "-"),
        h("td", { class: n.ready === "ready" ? "ok" : "bad" }, n.ready),
        h("td", { class: "num" }, n.leads.length),
        h("td", { class: "chips" }, n.leads.slice(0, 60).map((p) => h("span", {}, p)), n.leads.length > 60 ? " …" : "")))),
    c.leaderless.length ? [h("h2", {}, "Partitions without a live leader"),
      h("p", { class: "chips" }, c.leaderless.slice(0, 200).map((p) => h("span", {}, p)))] : [],
  );
}

function card(label, value, cls, sub) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label),
    h("div", { class: "value " + (cls || "") }, value), sub ? h("div", { class: "muted" }, sub) : null);
}

// ---------- topics ----------
async function topicsPage() {
  const topics = await api("GET", "/topics");
  const form = h("form", { class: "inline", id: "create-topic" },
    h("label", {}, "Name", h("input", { name: "name", required: true, placeholder: "orders" })),
    h("label", {}, "Partitions", h("input", { name: "partitions", type: "number", min: 1, value: 1, style: "width:90px" })),
    h("label", {}, "Configs (one name=value per line)", h("textarea", { name: "configs", rows: 1, cols: 36, placeholder: "retention.ms=86400000" })),
    h("button", { type: "submit" }, "Create topic"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const configs = parsePairs(form.configs.value, "=");
      await api("POST", "/topics", { name: form.name.value.trim(), partitions: Number(form.partitions.value), configs });
      location.hash = "#/topics/" + encodeURIComponent(form.name.value.trim());
    } catch (e) { showError(e.message); }
  });
  render(
    h("h1", {}, "Topics"),
    form,
    h("h2", {}, topics.length + " topics"),
    h("table", { id: "topics" },
      h("tr", {}, h("th", {}, "Topic"), h("th", { class: "num" }, "Partitions"), h("th", { class: "num" }, "Records"), h("th", { class: "num" }, "In the object store"), h("th", {}, "Cleanup"), h("th", {}, "")),
      topics.map((t) => h("tr", { "data-topic": t.name },
        h("td", {}, h("a", { href: "#/topics/" + encodeURIComponent(t.name) }, t.name)),
        h("td", { class: "num" }, t.partitions),
        h("td", { class: "num" }, fmt.n(t.records)),
        h("td", { class: "num" }, fmt.bytes(t.object_bytes)),
        h("td", {}, t.configs["cleanup.policy"] || "delete"),
        h("td", {}, h("button", { class: "danger", onclick: async () => {
          if (!confirm("Delete topic " + t.name + " and all its records?")) return;
          try { await api("DELETE", "/topics/" + encodeURIComponent(t.name)); await topicsPage(); } catch (e) { showError(e.message); }
        } }, "Delete"))))));
}

function parsePairs(text, sep) {
  const out = {};
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l) continue;
    const i = l.indexOf(sep);
    if (i <= 0) throw new Error("\"" + l + "\": write name" + sep + "value");
    out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return out;
}

async function topicPage(name) {
  const enc = encodeURIComponent(name);
  let prev = null; // the previous sample, for rates
  const partsTable = h("table", { id: "partitions" });
  const cards = h("div", { class: "cards" });
  const cfgTable = h("table", { id: "configs" });
  const refresh = async () => {
    const t = await api("GET", "/topics/" + enc);
    cards.replaceChildren(card("Partitions", t.partitions), card("Records", fmt.n(t.records)),
      card("In the object store", fmt.bytes(t.object_bytes), "", t.index_entries + " index entries"));
    const rows = t.partition_details.map((p) => {
      const l = p.local;
      let rin = null, rout = null, bin = null;
      const old = prev && prev.partition_details.find((q) => q.partition === p.partition);
      if (l && old && old.local) {
        const dt = (t.time_ms - prev.time_ms) / 1000;
        if (dt > 0) {
          rin = Math.max(l.records_in - old.local.records_in, 0) / dt;
          bin = Math.max(l.bytes_in - old.local.bytes_in, 0) / dt;
          rout = Math.max(l.records_out - old.local.records_out, 0) / dt;
        }
      }
      return h("tr", { "data-partition": p.partition },
        h("td", { class: "num" }, p.partition),
        h("td", { class: "num" }, p.leader < 0 ? "none" : p.leader),
        h("td", { class: "num" }, fmt.n(p.log_start)),
        h("td", { class: "num hw" }, fmt.n(p.high_watermark)),
        h("td", { class: "num" }, l ? fmt.bytes(l.hot_bytes) : "-"),
        h("td", { class: "num" }, fmt.bytes(p.object_bytes)),
        h("td", { class: "num" }, p.objects),
        h("td", { class: "num" }, rin === null ? "-" : fmt.rate(rin, "rec") + ", " + fmt.rate(bin, "B")),
        h("td", { class: "num" }, rout === null ? "-" : fmt.rate(rout, "rec")),
        h("td", { class: "muted" }, p.local_error || ""));
    });
    partsTable.replaceChildren(h("tr", {}, ["Partition", "Leader", "Log start", "High watermark", "Hot tier", "Object store", "Objects", "Produce", "Fetch", ""].map((x) => h("th", { class: x && x !== "" ? "num" : "" }, x))), ...rows);
    prev = t;
    return t;
  };
  const t = await refresh();
  renderConfigs(cfgTable, name, t.all_configs);

  const tailBody = h("tbody");
  const tailStatus = h("span", { class: "status muted" }, "stopped");
  let tailTimer = null, next = null;
  const tailBtn = h("button", { id: "tail-start", class: "secondary", onclick: async () => {
    if (tailTimer) { clearInterval(tailTimer); tailTimer = null; tailBtn.textContent = "Start live tail"; tailStatus.textContent = "stopped"; return; }
    tailBtn.textContent = "Stop"; tailStatus.textContent = "waiting for new records…";
    next = null;
    const poll = async () => {
      try {
        const q = next ? "?from=" + Object.entries(next).map(([p, o]) => p + ":" + o).join(",") : "?last=" + Number($("#tail-last").value || 0);
        const r = await api("GET", "/topics/" + enc + "/records" + q + "&limit=200");
        next = r.next;
        for (const rec of r.records) tailBody.prepend(recordRow(rec));
        while (tailBody.children.length > 500) tailBody.lastChild.remove();
        tailStatus.textContent = "live · " + tailBody.children.length + " shown";
      } catch (e) { showError(e.message); }
    };
    await poll();
    tailTimer = every(1000, poll);
  } }, "Start live tail");

  const pform = h("form", { class: "inline", id: "produce" },
    h("label", {}, "Key", h("input", { name: "key", placeholder: "(none)" })),
    h("label", {}, "Value", h("textarea", { name: "value", rows: 2, cols: 40, placeholder: '{"hello":"world"}' })),
    h("label", {}, "Headers (name:value per line)", h("textarea", { name: "headers", rows: 2, cols: 24 })),
    h("label", {}, "Partition", h("input", { name: "partition", type: "number", min: 0, placeholder: "by key", style: "width:90px" })),
    h("button", { type: "submit" }, "Produce"), h("span", { class: "status", id: "produce-result" }));
  pform.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { value: pform.value.value, headers: parsePairs(pform.headers.value, ":") };
      if (pform.key.value !== "") body.key = pform.key.value;
      if (pform.partition.value !== "") body.partition = Number(pform.partition.value);
      const r = await api("POST", "/topics/" + enc + "/records", body);
      $("#produce-result").textContent = "stored at partition " + r.partition + ", offset " + r.offset;
    } catch (e) { showError(e.message); }
  });

  const dform = h("form", { class: "inline", id: "download" },
    h("label", {}, "Format", h("select", { name: "format" }, h("option", { value: "parquet" }, "Parquet"), h("option", { value: "arrow" }, "Arrow IPC stream"))),
    h("label", {}, "Partitions (e.g. 0,2; empty: all)", h("input", { name: "partition", size: 10 })),
    h("label", {}, "From offset", h("input", { name: "from", type: "number", min: 0, style: "width:110px" })),
    h("label", {}, "To offset (exclusive)", h("input", { name: "to", type: "number", min: 1, style: "width:110px" })),
    h("label", {}, "Decode JSON values", h("input", { name: "decode", type: "checkbox" })),
    h("button", { type: "submit" }, "Download"));
  dform.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (dform.partition.value.trim()) q.set("partition", dform.partition.value.trim());
    if (dform.from.value) q.set("from", dform.from.value);
    if (dform.to.value) q.set("to", dform.to.value);
    if (dform.decode.checked) q.set("decode", "json");
    location.href = "/v1/topics/" + enc + "/" + dform.format.value + (q.toString() ? "?" + q : "");
  });

  render(
    h("h1", {}, "Topic ", h("span", { id: "topic-name" }, name)),
    cards,
    h("h2", {}, "Partitions"), partsTable,
    h("h2", {}, "Live tail"),
    h("div", {}, tailBtn, " ", h("label", { class: "muted" }, "starting with the last ", h("input", { id: "tail-last", type: "number", min: 0, max: 1000, value: 0, style: "width:70px" }), " records of each partition"), tailStatus),
    h("div", { class: "tail" }, h("table", { id: "tail" },
      h("thead", {}, h("tr", {}, ["Partition", "Offset", "Timestamp", "Key", "Value", "Headers"].map((x) => h("th", {}, x)))), tailBody)),
    h("h2", {}, "Produce a test record"), pform,
    h("h2", {}, "Download"), dform,
    h("h2", {}, "Configs"), cfgTable,
  );
  every(2000, async () => { try { await refresh(); } catch (e) { showError(e.message); } });
}

function pretty(s) {
  if (s === null) return "null";
  const t = s.trim();
  if (t.startsWith("{") || t.startsWith("[")) {
    try { return JSON.stringify(JSON.parse(t), null, 2); } catch (e) { /* not JSON */ }
  }
  return s;
}

function recordRow(r) {
  return h("tr", { class: "tail-record", "data-partition": r.partition, "data-offset": r.offset },
    h("td", { class: "num" }, r.partition), h("td", { class: "num" }, r.offset),
    h("td", {}, fmt.time(r.timestamp_ms)),
    h("td", {}, h("pre", { class: "key" }, r.key === null ? "null" : r.key)),
    h("td", {}, h("pre", { class: "value" }, (r.binary ? "(base64) " : "") + pretty(r.value))),
    h("td", {}, h("pre", {}, r.headers.map((x) => x.key + ": " + x.value).join("\n"))));
}

function renderConfigs(table, topic, configs) {
  const enc = encodeURIComponent(topic);
  table.replaceChildren(h("tr", {}, h("th", {}, "Config"), h("th", {}, "Value"), h("th", {}, "")),
    ...configs.map((c) => {
      const input = h("input", { value: c.value, size: 28, disabled: c.read_only });
      const save = async (body) => {
        try {
          await api("PUT", "/topics/" + enc + "/configs", body);
          const t = await api("GET", "/topics/" + enc);
          renderConfigs(table, topic, t.all_configs);
        } catch (e) { showError(e.message); }
      };
      return h("tr", { "data-config": c.name },
        h("td", {}, c.name, c.default ? h("span", { class: "muted" }, " (default)") : ""),
        h("td", {}, input),
        h("td", {}, h("button", { class: "secondary", disabled: c.read_only, onclick: () => save({ set: { [c.name]: input.value } }) }, "Save"), " ",
          c.default ? "" : h("button", { class: "secondary", onclick: () => save({ delete: [c.name] }) }, "Reset to default")));
    }));
}

// ---------- groups ----------
async function groupsPage() {
  await drawGroups();
  every(5000, async () => { try { await drawGroups(); } catch (e) { showError(e.message); } });
}

async function drawGroups() {
  const groups = await api("GET", "/groups");
  render(h("h1", {}, "Consumer groups"),
    groups.length === 0 ? h("p", { class: "muted" }, "No consumer groups yet.") :
      h("table", { id: "groups" },
        h("tr", {}, h("th", {}, "Group"), h("th", {}, "State"), h("th", {}, "Protocol type")),
        groups.map((g) => h("tr", { "data-group": g.name },
          h("td", {}, h("a", { href: "#/groups/" + encodeURIComponent(g.name) }, g.name)),
          h("td", {}, g.state), h("td", {}, g.protocol_type || "-")))));
}

async function groupPage(name) {
  const enc = encodeURIComponent(name);
  const g = await api("GET", "/groups/" + enc);
  const topics = [...new Set(g.partitions.map((p) => p.topic))];
  const form = h("form", { class: "inline", id: "reset" },
    h("label", {}, "Topic", topics.length ? h("select", { name: "topic" }, topics.map((t) => h("option", { value: t }, t))) : h("input", { name: "topic" })),
    h("label", {}, "Reset to", h("select", { name: "to" },
      h("option", { value: "earliest" }, "earliest"), h("option", { value: "latest" }, "latest"),
      h("option", { value: "timestamp" }, "timestamp"), h("option", { value: "offset" }, "offset"))),
    h("label", {}, "Offset, or time (ISO 8601 or ms)", h("input", { name: "value", size: 24 })),
    h("button", { type: "submit", disabled: g.members.length > 0 }, "Reset offsets"),
    h("span", { class: "status", id: "reset-result" }, g.members.length > 0 ? "Stop the group's consumers first: offsets can be reset only while the group is empty." : ""));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = { topic: form.topic.value, to: form.to.value, value: 0 };
      if (body.to === "offset") {
        if (!/^\d+$/.test(form.value.value.trim())) throw new Error("Give the offset as a whole number.");
        body.value = Number(form.value.value.trim());
      } else if (body.to === "timestamp") {
        const v = form.value.value.trim();
        const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
        if (!Number.isFinite(ms)) throw new Error("Give the time as ISO 8601 (2026-12-03T10:00:00Z) or milliseconds since 1970.");
        body.value = ms;
      }
      const r = await api("POST", "/groups/" + enc + "/reset", body);
      $("#reset-result").textContent = "Committed: " + Object.entries(r.offsets).map(([p, o]) => r.topic + "/" + p + " → " + o).join(", ");
      await refresh();
    } catch (e) { showError(e.message); }
  });
  const summary = h("div", { class: "cards" });
  const members = h("div");
  const parts = h("table", { id: "group-partitions" });
  const chart = h("div", { id: "lag-chart" });
  const refresh = async () => {
    const g = await api("GET", "/groups/" + enc);
    summary.replaceChildren(card("State", g.state), card("Members", g.members.length), card("Lag", fmt.n(g.lag), "", "records, in all"), card("Coordinator", "node " + g.coordinator));
    members.replaceChildren(g.members.length === 0 ? h("p", { class: "muted" }, "No members.") :
      h("table", { id: "members" }, h("tr", {}, ["Member", "Instance", "Client", "Host", "Assigned"].map((x) => h("th", {}, x))),
        g.members.map((m) => h("tr", {}, h("td", {}, m.id), h("td", {}, m.instance_id || "-"), h("td", {}, m.client_id), h("td", {}, m.host),
          h("td", { class: "chips" }, (m.assigned || []).map((a) => h("span", {}, a)))))));
    parts.replaceChildren(h("tr", {}, ["Topic", "Partition", "Committed", "High watermark", "Lag", "Member"].map((x, i) => h("th", { class: i > 0 && i < 5 ? "num" : "" }, x))),
      ...g.partitions.map((p) => h("tr", { "data-tp": p.topic + "/" + p.partition },
        h("td", {}, p.topic), h("td", { class: "num" }, p.partition), h("td", { class: "num committed" }, fmt.n(p.committed)),
        h("td", { class: "num" }, fmt.n(p.high_watermark)), h("td", { class: "num lag" }, fmt.n(p.lag)), h("td", {}, p.member || "-"))));
    chart.replaceChildren(lagChart(g.history, g.history_error));
    form.querySelector("button").disabled = g.members.length > 0;
  };
  render(h("h1", {}, "Consumer group ", h("span", { id: "group-name" }, name)), summary,
    h("h2", {}, "Lag over time"), chart,
    h("h2", {}, "Members"), members,
    h("h2", {}, "Offsets and lag"), parts,
    h("h2", {}, "Reset offsets"), form);
  await refresh();
  every(3000, async () => { try { await refresh(); } catch (e) { showError(e.message); } });
}

function lagChart(history, err) {
  if (err) return h("p", { class: "muted" }, "No lag history: " + err);
  if (!history || history.length < 2) return h("p", { class: "muted" }, "The coordinator samples lag every 10 seconds; the chart appears after two samples.");
  const W = 700, H = 160, P = 30;
  const t0 = Date.parse(history[0].time), t1 = Date.parse(history[history.length - 1].time);
  const maxLag = Math.max(1, ...history.map((s) => s.lag));
  const x = (t) => P + (W - 2 * P) * (t1 > t0 ? (t - t0) / (t1 - t0) : 0);
  const y = (v) => H - P + (-(H - 2 * P) * v) / maxLag;
  const pts = history.map((s) => x(Date.parse(s.time)).toFixed(1) + "," + y(s.lag).toFixed(1)).join(" ");
  const NS = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text) e.textContent = text; return e; };
  const svg = el("svg", { class: "chart", width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  svg.append(el("line", { x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#ccc" }),
    el("polyline", { points: pts, fill: "none", stroke: "#2858c8", "stroke-width": 2 }),
    el("text", { x: 4, y: P - 8, "font-size": 11, fill: "#6b7385" }, "max " + maxLag.toLocaleString("en-US") + " records"),
    el("text", { x: P, y: H - 8, "font-size": 11, fill: "#6b7385" }, new Date(t0).toLocaleTimeString()),
    el("text", { x: W - P - 60, y: H - 8, "font-size": 11, fill: "#6b7385" }, new Date(t1).toLocaleTimeString()));
  return svg;
}
