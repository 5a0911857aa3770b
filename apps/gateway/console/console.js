// The Switchboard live console. Plain browser JavaScript, no build step.
// Reads the gateway's own JSON endpoints with the API key the operator typed
// (kept in sessionStorage, so it lives as long as the tab). Everything from
// the server is written with textContent: run records hold user prompts.
"use strict";

/** Where the data comes from; run records have the shape of GET /v1/orchestrations/{id}. */
const STATS_URL = "/v1/console/stats";
const RUNS_URL = "/v1/console/runs";
const KEY_STORAGE = "switchboard.apiKey";
const STATE_COLOURS = {
  pending: "#64748b",
  running: "#2563eb",
  succeeded: "#16a34a",
  failed: "#dc2626",
  skipped: "#d97706",
  cancelled: "#78716c",
};

const $ = (id) => document.getElementById(id);
let selectedRunId = null;

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

async function getJson(url) {
  const headers = { accept: "application/json" };
  const key = apiKey();
  if (key) headers.authorization = "Bearer " + key;
  const response = await fetch(url, { headers, cache: "no-store" });
  if (response.status === 401) throw new Error(key ? "the API key was refused" : "this gateway needs an API key");
  if (!response.ok) throw new Error(url + " answered " + response.status);
  return response.json();
}

function setStatus(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function seconds(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (value < 1) return (value * 1000).toFixed(value < 0.01 ? 2 : 0) + " ms";
  return value.toFixed(2) + " s";
}

function perSecond(value) {
  if (!Number.isFinite(value)) return "–";
  return value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

function badge(state) {
  const span = document.createElement("span");
  span.className = "badge state-" + String(state || "unknown").replace(/[^a-z-]/g, "");
  span.textContent = state || "unknown";
  return span;
}

function fillTable(table, rows) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (rows.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = table.querySelectorAll("th").length;
    cell.className = "empty";
    cell.textContent = "nothing yet";
    return;
  }
  for (const cells of rows) {
    const row = body.insertRow();
    for (const value of cells) {
      const cell = row.insertCell();
      if (value instanceof Node) cell.append(value);
      else cell.textContent = value === undefined || value === null ? "" : String(value);
    }
  }
}

async function refreshStats() {
  const stats = await getJson(STATS_URL);
  $("window").textContent = "(last " + Math.round(stats.windowSeconds || 0) + " s)";
  $("rate").textContent = perSecond(stats.requests?.perSecond);
  $("errors").textContent = perSecond(stats.requests?.errorsPerSecond);
  $("p50").textContent = seconds(stats.requests?.latency?.p50);
  $("p95").textContent = seconds(stats.requests?.latency?.p95);
  $("p99").textContent = seconds(stats.requests?.latency?.p99);
  $("ttft").textContent = seconds(stats.timeToFirstToken?.p50);
  $("tokens").textContent = perSecond(stats.tokens?.outputPerSecond);
  $("inflight").textContent = String(stats.requests?.inFlight ?? "–");
  fillTable($("models"), (stats.models || []).map((model) => [model.id, model.backend, badge(model.state)]));
  fillTable($("queues"), (stats.queues || []).map((queue) => [queue.queue, queue.state, queue.count]));
  setStatus("transport " + (stats.transport || "?") + " · updated " + new Date().toLocaleTimeString(), false);
}

async function refreshRuns() {
  const list = await getJson(RUNS_URL + "?limit=20");
  const runs = Array.isArray(list.data) ? list.data : [];
  const body = $("runs").querySelector("tbody");
  if (!list.connected) {
    fillTable($("runs"), []);
    body.rows[0].cells[0].textContent = "router runs are not connected to this console";
    return;
  }
  fillTable($("runs"), runs.map((run) => [run.id, badge(run.status), run.tasks ?? "", run.createdAt ? new Date(run.createdAt).toLocaleTimeString() : ""]));
  runs.forEach((run, index) => {
    const row = body.rows[index];
    if (!row) return;
    row.dataset.runId = run.id;
    if (run.id === selectedRunId) row.classList.add("selected");
    row.addEventListener("click", () => selectRun(run.id));
  });
  // The newest run is shown until the operator picks another.
  if (selectedRunId === null && runs.length > 0) selectedRunId = runs[0].id;
}

async function selectRun(id) {
  selectedRunId = id;
  for (const row of $("runs").querySelectorAll("tbody tr")) row.classList.toggle("selected", row.dataset.runId === id);
  const run = await getJson(RUNS_URL + "/" + encodeURIComponent(id));
  drawRun(run);
}

/** The graph's nodes: the plan's tasks, with state and model from the task records and selections. */
function graphNodes(run) {
  const plan = Array.isArray(run.plan) ? run.plan : [];
  const tasks = Array.isArray(run.tasks) ? run.tasks : [];
  const selections = Array.isArray(run.selections) ? run.selections : [];
  const source = plan.length > 0 ? plan : tasks;
  return source
    .filter((node) => node && Number.isInteger(node.id))
    .map((node) => {
      const record = tasks.find((task) => task && task.id === node.id) || {};
      const selection = selections.find((entry) => entry && entry.taskId === node.id) || {};
      const deps = (Array.isArray(node.dep) ? node.dep : []).filter((dep) => Number.isInteger(dep) && dep >= 0);
      const state = record.status || "pending";
      return { id: node.id, task: node.task || record.task || "task", deps, state, model: record.model || selection.model || null, error: record.error };
    });
}

function svgElement(name, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function clip(text, length) {
  const value = String(text);
  return value.length > length ? value.slice(0, length - 1) + "…" : value;
}

function drawRun(run) {
  const svg = $("graph");
  svg.replaceChildren();
  const nodes = graphNodes(run);
  $("graph-title").className = "";
  $("graph-title").textContent = "run " + run.id + " · " + (run.status || "?") + " · " + nodes.length + " task" + (nodes.length === 1 ? "" : "s");
  if (nodes.length === 0) {
    svg.setAttribute("width", "0");
    svg.setAttribute("height", "0");
    $("graph-title").textContent += " (no plan: answered as plain chat)";
    return;
  }
  // Column = longest path from a root; rows in plan order inside a column.
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const depth = new Map();
  const depthOf = (node, seen = new Set()) => {
    if (depth.has(node.id)) return depth.get(node.id);
    if (seen.has(node.id)) return 0;
    seen.add(node.id);
    let value = 0;
    for (const dep of node.deps) if (byId.has(dep)) value = Math.max(value, depthOf(byId.get(dep), seen) + 1);
    depth.set(node.id, value);
    return value;
  };
  const columns = [];
  for (const node of nodes) {
    const column = depthOf(node);
    (columns[column] ||= []).push(node);
  }
  const width = 200, height = 58, gapX = 60, gapY = 18, pad = 12;
  const position = new Map();
  columns.forEach((column, x) => column.forEach((node, y) => position.set(node.id, { x: pad + x * (width + gapX), y: pad + y * (height + gapY) })));
  const rows = Math.max(...columns.map((column) => column.length));
  svg.setAttribute("width", String(pad * 2 + columns.length * width + (columns.length - 1) * gapX));
  svg.setAttribute("height", String(pad * 2 + rows * height + (rows - 1) * gapY));

  const defs = svgElement("defs", {});
  const marker = svgElement("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
  marker.append(svgElement("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#94a3b8" }));
  defs.append(marker);
  svg.append(defs);

  for (const node of nodes) {
    const to = position.get(node.id);
    for (const dep of node.deps) {
      const from = position.get(dep);
      if (!from) continue;
      const x1 = from.x + width, y1 = from.y + height / 2, x2 = to.x, y2 = to.y + height / 2;
      svg.append(svgElement("path", { class: "task-edge", d: `M ${x1} ${y1} C ${x1 + gapX / 2} ${y1}, ${x2 - gapX / 2} ${y2}, ${x2} ${y2}`, stroke: "#94a3b8", fill: "none", "marker-end": "url(#arrow)", "data-from": dep, "data-to": node.id }));
    }
  }
  for (const node of nodes) {
    const { x, y } = position.get(node.id);
    const group = svgElement("g", { class: "task-node", "data-task-id": node.id, "data-state": node.state, transform: `translate(${x} ${y})` });
    group.append(svgElement("rect", { width, height, rx: 8, fill: STATE_COLOURS[node.state] || "#475569", stroke: "#e2e8f0", "stroke-opacity": 0.25 }));
    group.append(svgElement("text", { x: 10, y: 20, fill: "#fff", "font-weight": 600 }, clip("#" + node.id + " " + node.task, 28)));
    group.append(svgElement("text", { x: 10, y: 38, fill: "#e2e8f0", class: "task-model" }, clip(node.model || "no model", 30)));
    group.append(svgElement("text", { x: 10, y: 52, fill: "#cbd5e1", "font-size": 10 }, node.state));
    const title = svgElement("title", {}, node.task + " on " + (node.model || "no model") + ": " + node.state + (node.error ? " — " + (node.error.message || JSON.stringify(node.error)) : ""));
    group.append(title);
    svg.append(group);
  }
}

async function tick() {
  try {
    await refreshStats();
    await refreshRuns();
    if (selectedRunId !== null) await selectRun(selectedRunId);
  } catch (error) {
    setStatus(error.message, true);
  }
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
  $("api-key").value = "";
  tick();
});

tick();
setInterval(tick, 2000);
