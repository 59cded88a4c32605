// The conversation viewer: an index of every conversation, one conversation as a chat, and two
// conversations of the same task and trial side by side. Every piece of data reaches the page
// through text nodes (never innerHTML), so a message containing markup shows as text.
"use strict";

const IX = window.VIEWER_INDEX;
const C = IX.cols;
const V = IX.values;
const N = IX.count;
const PAGE = 100;
const FOLD = 400;
const CATS = ["job", "env", "variant", "intensity", "model", "termination", "fault"];
const NUMS = ["task", "trial", "reward", "turns", "tool_errors", "tokens"];
const COLUMNS = [
  ["env", "env"], ["task", "task"], ["trial", "trial"], ["variant", "variant"],
  ["intensity", "intensity"], ["model", "model"], ["reward", "reward"],
  ["termination", "termination"], ["fault", "fault"], ["turns", "turns"], ["tool_errors", "tool errors"],
  ["tokens", "tokens"], ["job", "job"],
];
const ORDER = Array.from({ length: N }, (_, i) => i)
  .sort((a, b) => C.job[a] - C.job[b] || C.task[a] - C.task[b] || C.trial[a] - C.trial[b]);
const OUTCOME = { 1: "success", 0: "failed", "-1": "not scored" };

const app = document.getElementById("app");
const statusLine = document.getElementById("status");

// ---------- small DOM helpers: strings always become text nodes ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
const cat = (column, row) => V[column][C[column][row]];
const label = (value) => (value === "" ? "—" : value);

// ---------- data loading on demand ----------
const chunks = {};
const waiting = {};
const failed = {};
async function inflate(base64) {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}
window.viewerChunk = (number, packed) => {
  inflate(packed).then((bodies) => { chunks[number] = bodies; }, (error) => { failed[number] = error; })
    .then(() => {
      for (const done of waiting[number] || []) done();
      delete waiting[number];
    });
};
function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(script);
  });
}
function loadChunk(number) {
  if (chunks[number]) return Promise.resolve(chunks[number]);
  return new Promise((resolve, reject) => {
    const done = () => (chunks[number] ? resolve(chunks[number]) : reject(new Error(`data file ${number} is damaged: ${failed[number]}`)));
    if (waiting[number]) { waiting[number].push(done); return; }
    waiting[number] = [done];
    loadScript(`data/chunks/${String(number).padStart(5, "0")}.js`).catch(reject);
  });
}
function getBody(row) {
  return loadChunk(Math.floor(row / IX.chunk_size)).then((bodies) => bodies[row % IX.chunk_size]);
}
let policiesLoaded = null;
function getPolicy(id) {
  policiesLoaded = policiesLoaded || loadScript("data/policies.js");
  return policiesLoaded.then(() => window.VIEWER_POLICIES[id] || "");
}

// ---------- text search: loads every body once, a few files at a time ----------
let searchText = null;
let searchLoading = null;
function ensureSearchText(progress) {
  if (searchText) return Promise.resolve();
  if (searchLoading) return searchLoading;
  let loaded = 0;
  const queue = Array.from({ length: IX.chunks }, (_, i) => i);
  const worker = () => {
    const next = queue.shift();
    if (next === undefined) return Promise.resolve();
    return loadChunk(next).then(() => { loaded += 1; progress(loaded, IX.chunks); return worker(); });
  };
  searchLoading = Promise.all(Array.from({ length: 6 }, worker)).then(() => {
    searchText = new Array(N);
    for (let row = 0; row < N; row++) {
      const body = chunks[Math.floor(row / IX.chunk_size)][row % IX.chunk_size];
      const parts = [body.instruction];
      for (const m of body.messages) {
        parts.push(m.c);
        for (const call of m.tc || []) parts.push(call.name, call.args);
      }
      searchText[row] = parts.join("\n").toLowerCase();
    }
  });
  return searchLoading;
}

// ---------- state, kept in the URL so a filtered index can be linked ----------
const state = {
  failed: false, flip: "", baseline: IX.baseline, q: "", page: 0, sel: 0, sort: "", desc: false,
  cat: Object.fromEntries(CATS.map((c) => [c, ""])),
  num: Object.fromEntries(NUMS.map((c) => [c, ""])),
};
function stateQuery() {
  const params = new URLSearchParams();
  if (state.failed) params.set("failed", "1");
  if (state.flip) params.set("flip", state.flip);
  if (state.baseline !== IX.baseline) params.set("baseline", state.baseline);
  if (state.q) params.set("q", state.q);
  if (state.sort) params.set("sort", (state.desc ? "-" : "") + state.sort);
  if (state.page) params.set("page", String(state.page));
  for (const c of CATS) if (state.cat[c]) params.set(c, state.cat[c]);
  for (const c of NUMS) if (state.num[c]) params.set(c, state.num[c]);
  const text = params.toString();
  return text ? `?${text}` : "";
}
function readState(query) {
  const params = new URLSearchParams(query);
  state.failed = params.get("failed") === "1";
  state.flip = params.get("flip") || "";
  state.baseline = params.get("baseline") || IX.baseline;
  state.q = params.get("q") || "";
  const sort = params.get("sort") || "";
  state.desc = sort.startsWith("-");
  state.sort = sort.replace(/^-/, "");
  state.page = Number(params.get("page")) || 0;
  for (const c of CATS) state.cat[c] = params.get(c) || "";
  for (const c of NUMS) state.num[c] = params.get(c) || "";
}

// ---------- filtering ----------
function numberTest(text) {
  const t = text.trim();
  if (!t) return null;
  let m = t.match(/^(-?\d+(?:\.\d+)?)\s*(?:-|\.\.)\s*(-?\d+(?:\.\d+)?)$/);
  if (m) return (x) => x >= Number(m[1]) && x <= Number(m[2]);
  m = t.match(/^(>=|<=|>|<|=)?\s*(-?\d+(?:\.\d+)?)$/);
  if (!m) return undefined;
  const v = Number(m[2]);
  return { ">=": (x) => x >= v, "<=": (x) => x <= v, ">": (x) => x > v, "<": (x) => x < v }[m[1]]
    || ((x) => x === v);
}
function baselineRows() {
  const code = V.variant.indexOf(state.baseline);
  const rows = new Map();
  for (let row = 0; row < N; row++) {
    if (C.variant[row] === code && !rows.has(C.group[row])) rows.set(C.group[row], row);
  }
  return rows;
}
function flipOf(row, baseline) {
  const b = baseline.get(C.group[row]);
  if (b === undefined || C.variant[b] === C.variant[row]) return "";
  if (C.outcome[b] === 1 && C.outcome[row] === 0) return "worse";
  if (C.outcome[b] === 0 && C.outcome[row] === 1) return "better";
  return "";
}
let baselineCache = null;
function currentBaseline() {
  if (!baselineCache || baselineCache.name !== state.baseline) {
    baselineCache = { name: state.baseline, rows: baselineRows() };
  }
  return baselineCache.rows;
}
function filtered() {
  // a category filter is "=" and the value, so that the empty value (no intensity) can be chosen
  const cats = CATS.filter((c) => state.cat[c]).map((c) => [c, V[c].indexOf(state.cat[c].slice(1))]);
  const nums = NUMS.map((c) => [c, numberTest(state.num[c])]).filter(([, test]) => test);
  const baseline = currentBaseline();
  const q = state.q.trim().toLowerCase();
  const rows = [];
  for (const row of ORDER) {
    if (state.failed && C.outcome[row] === 1) continue;
    if (cats.some(([c, code]) => C[c][row] !== code)) continue;
    if (nums.some(([c, test]) => !test(C[c][row]))) continue;
    if (state.flip) {
      const flip = flipOf(row, baseline);
      if (!flip || (state.flip !== "any" && flip !== state.flip)) continue;
    }
    if (q && searchText && !searchText[row].includes(q)) continue;
    rows.push(row);
  }
  if (state.sort) {
    const key = CATS.includes(state.sort) ? (r) => cat(state.sort, r) : (r) => C[state.sort][r];
    const sign = state.desc ? -1 : 1;
    rows.sort((a, b) => (key(a) < key(b) ? -sign : key(a) > key(b) ? sign : a - b));
  }
  return rows;
}
let view = [];

// ---------- routes ----------
function rowOf(job, task, trial) {
  const code = V.job.indexOf(job);
  for (let row = 0; row < N; row++) {
    if (C.job[row] === code && C.task[row] === task && C.trial[row] === trial) return row;
  }
  return -1;
}
const enc = encodeURIComponent;
function conversationHash(row) {
  return `#/c/${enc(cat("job", row))}/${C.task[row]}/${C.trial[row]}`;
}
function sideHash(a, b) {
  return `#/s/${enc(cat("job", a))}/${enc(cat("job", b))}/${C.task[a]}/${C.trial[a]}`;
}
function partner(row) {
  const group = sameGroup(row);
  const base = group.find((r) => cat("variant", r) === state.baseline && r !== row);
  return base !== undefined ? base : group.find((r) => r !== row);
}
function sameGroup(row) {
  const rows = [];
  for (let r = 0; r < N; r++) if (C.group[r] === C.group[row]) rows.push(r);
  return rows;
}
function route() {
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  window.scrollTo(0, 0);
  if (parts[0] === "c" && parts.length === 4) {
    const row = rowOf(parts[1], Number(parts[2]), Number(parts[3]));
    return row < 0 ? notFound(hash) : showConversation(row);
  }
  if (parts[0] === "s" && parts.length === 5) {
    const a = rowOf(parts[1], Number(parts[3]), Number(parts[4]));
    const b = rowOf(parts[2], Number(parts[3]), Number(parts[4]));
    return a < 0 || b < 0 ? notFound(hash) : showSideBySide(a, b);
  }
  readState(query || "");
  if (Math.floor(state.sel / PAGE) !== state.page) state.sel = state.page * PAGE;
  return showIndex();
}
function notFound(hash) {
  app.replaceChildren(h("p", { class: "problem" }, `No conversation at ${hash}.`), h("a", { href: "#/" }, "Back to the index"));
}

// ---------- index ----------
function outcomeCell(row) {
  const outcome = C.outcome[row];
  return h("span", { class: `badge o${outcome}` }, outcome === -1 ? "error" : C.reward[row]);
}
function select(id, options, value, onchange) {
  return h("select", { id, onchange: (e) => onchange(e.target.value) },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}
function setIndexState(change) {
  change();
  state.page = change.keepPage ? state.page : 0;
  state.sel = state.page * PAGE;
  history.replaceState(null, "", `#/${stateQuery()}`);
  renderIndexBody();
}
let indexParts = null;
function showIndex() {
  document.title = `${IX.title} · conversations`;
  if (!N) {
    app.replaceChildren(h("p", { class: "problem" }, "No conversations in this directory."), skippedList());
    return;
  }
  const search = h("input", {
    id: "search", type: "search", placeholder: "search the messages", value: state.q,
    onchange: (e) => setIndexState(() => { state.q = e.target.value; }),
  });
  const controls = h("div", { class: "controls" },
    h("label", {}, h("input", { id: "failed-only", type: "checkbox", checked: state.failed,
      onchange: (e) => setIndexState(() => { state.failed = e.target.checked; }) }), " failed only"),
    h("label", {}, "flipped ",
      select("flip", [["", "all"], ["worse", "baseline ✓, this ✗"], ["better", "baseline ✗, this ✓"], ["any", "either"]],
        state.flip, (v) => setIndexState(() => { state.flip = v; }))),
    h("label", {}, "baseline ",
      select("baseline", V.variant.map((v) => [v, v]), state.baseline,
        (v) => setIndexState(() => { state.baseline = v; }))),
    search,
    h("span", { id: "count" }),
  );
  const head = h("tr", {}, COLUMNS.map(([key, text]) => h("th", {
    class: "sortable", title: "sort",
    onclick: () => setIndexState(() => { state.desc = state.sort === key ? !state.desc : false; state.sort = key; }),
  }, text, state.sort === key ? (state.desc ? " ▼" : " ▲") : "")));
  const filters = h("tr", { class: "filters" }, COLUMNS.map(([key]) => h("th", {},
    CATS.includes(key)
      ? select(`filter-${key}`, [["", "all"], ...V[key].map((v) => [`=${v}`, label(v)])], state.cat[key],
        (v) => setIndexState(() => { state.cat[key] = v; }))
      : h("input", {
        id: `filter-${key}`, class: "num", placeholder: "=, >, a-b", value: state.num[key],
        onchange: (e) => {
          const valid = numberTest(e.target.value) !== undefined;
          e.target.classList.toggle("invalid", !valid);
          setIndexState(() => { state.num[key] = valid ? e.target.value : ""; });
        },
      }))));
  const tbody = h("tbody", { id: "rows" });
  const pager = h("div", { class: "pager", id: "pager" });
  indexParts = { tbody, pager, count: null };
  app.replaceChildren(controls, h("table", { class: "index" }, h("thead", {}, head, filters), tbody), pager, skippedList());
  indexParts.count = document.getElementById("count");
  renderIndexBody();
}
function renderIndexBody() {
  if (!indexParts) return;
  if (state.q && !searchText) {
    indexParts.count.textContent = "loading the messages to search…";
    ensureSearchText((done, all) => { indexParts.count.textContent = `loading the messages to search: ${done}/${all}`; })
      .then(renderIndexBody, (error) => { indexParts.count.textContent = String(error.message); });
    return;
  }
  view = filtered();
  const pages = Math.max(1, Math.ceil(view.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  state.sel = Math.min(state.sel, Math.max(0, view.length - 1));
  const baseline = currentBaseline();
  const start = state.page * PAGE;
  indexParts.tbody.replaceChildren(...view.slice(start, start + PAGE).map((row, i) => {
    const flip = flipOf(row, baseline);
    return h("tr", {
      "data-row": row, "data-variant": cat("variant", row), "data-task": C.task[row], "data-trial": C.trial[row],
      "data-outcome": C.outcome[row], "data-flip": flip,
      class: `${start + i === state.sel ? "sel " : ""}o${C.outcome[row]}`,
      onclick: () => { location.hash = conversationHash(row); },
    }, COLUMNS.map(([key]) => h("td", { "data-col": key },
      key === "reward" ? outcomeCell(row)
        : key === "variant" ? [label(cat(key, row)), flip ? h("span", { class: `flip ${flip}`, title: `against ${state.baseline}` }, flip === "worse" ? " ↓" : " ↑") : null]
          : CATS.includes(key) ? label(cat(key, row)) : C[key][row])));
  }));
  indexParts.count.textContent = `${view.length} of ${N} conversations`;
  indexParts.pager.replaceChildren(
    h("button", { disabled: state.page === 0, onclick: () => setIndexState(Object.assign(() => { state.page -= 1; }, { keepPage: true })) }, "← previous"),
    ` page ${state.page + 1} of ${pages} `,
    h("button", { disabled: state.page >= pages - 1, onclick: () => setIndexState(Object.assign(() => { state.page += 1; }, { keepPage: true })) }, "next →"),
  );
  statusLine.textContent = "";
}
function skippedList() {
  const items = IX.skipped.map((s) => h("li", {}, `${s.path}${s.line ? `:${s.line}` : ""}: ${s.reason}`));
  for (const job of IX.jobs_without_conversations) items.push(h("li", {}, `${job}: no conversations`));
  if (!items.length && !IX.replaced) return h("p", { class: "muted", id: "skipped-none" }, "Every record was read.");
  return h("details", { id: "skipped", open: items.length > 0 },
    h("summary", {}, `${IX.skipped.length} lines skipped`,
      IX.replaced ? `, ${IX.replaced} records replaced by a later retry of the same task and trial` : ""),
    h("ul", {}, items));
}

// ---------- one conversation ----------
function stable(value) {
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stable(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}
function folded(text, cls) {
  if (text.length <= FOLD && text.split("\n").length <= 12) return h("pre", { class: cls }, text);
  return h("details", { class: cls },
    h("summary", {}, `${text.length} characters: ${text.slice(0, 120).replace(/\s+/g, " ")}…`),
    h("pre", {}, text));
}
function groupTurns(messages) {
  const turns = [];
  let current = { user: null, items: [] };
  for (const m of messages) {
    if (m.r === "u") {
      if (current.user !== null || current.items.length) turns.push(current);
      current = { user: m, items: [] };
    } else current.items.push(m);
  }
  if (current.user !== null || current.items.length) turns.push(current);
  let userTurn = 0;
  for (const turn of turns) turn.index = turn.user ? userTurn++ : null;
  return turns;
}
// ---------- a reactive user's intensity ----------
const LADDER = ["low", "medium", "high"];
function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}
function intensityChart(body) {
  // the rules' intensity (low..high) per user turn, and the judge's (0..3) beside it on the same height
  const turns = body.intensities.length;
  if (!body.intensities.some((v) => v !== null) || turns === 0) return null;
  const width = 76 + 48 * Math.max(turns - 1, 1), height = 120, top = 14, bottom = 96;
  const x = (t) => 56 + 48 * t;
  const y = (fraction) => bottom - (bottom - top) * fraction;
  const line = (points, cls) => points.length ? [
    svg("polyline", { class: cls, points: points.map(([t, f]) => `${x(t)},${y(f)}`).join(" ") }),
    ...points.map(([t, f]) => svg("circle", { class: cls, cx: x(t), cy: y(f), r: 3.5 })),
  ] : [];
  const rule = body.intensities.map((v, t) => [t, v === null ? null : LADDER.indexOf(v) / 2]).filter(([, f]) => f !== null && f >= 0);
  const judged = Array.from({ length: turns }, (_, t) => [t, body.judge[String(t)]?.intensity])
    .filter(([, v]) => typeof v === "number").map(([t, v]) => [t, v / 3]);
  const labels = LADDER.map((name, i) => svg("text", { x: 2, y: y(i / 2) + 4, class: "axis" }, name));
  const ticks = Array.from({ length: turns }, (_, t) => svg("text", { x: x(t) - 4, y: height - 6, class: "axis" }, t + 1));
  return h("section", { class: "dynamics" }, h("h3", {}, `Intensity along the conversation (${body.dynamics})`),
    h("p", { class: "muted" }, "solid: the rules' intensity each user turn was written at; dashed: the judge's intensity (0–3) of that turn"),
    svg("svg", { class: "intensity", width, height, viewBox: `0 0 ${width} ${height}`, "data-turns": turns },
      ...labels, ...ticks, ...line(rule, "rule"), ...line(judged, "judged")));
}
function renderTurn(turn, body, row) {
  const out = [];
  if (turn.user) {
    const active = body.affect[turn.index];
    const judged = body.judge[String(turn.index)];
    const level = body.intensities?.[turn.index] ?? cat("intensity", row);
    const events = body.events?.[turn.index] || [];
    out.push(h("div", { class: `msg user${active ? " active" : ""}`, "data-turn": turn.index },
      h("div", { class: "who" }, `User · turn ${turn.index + 1}`,
        active ? h("span", { class: "chip emotion", title: "the emotion shapes this turn" }, `${cat("variant", row)}${level ? ` · ${level}` : ""}`)
          : h("span", { class: "chip calm" }, "no emotion"),
        events.length ? h("span", { class: "chip events", title: "what the agent's last turn did that moved the intensity" }, events.join(", ")) : null,
        judged ? h("span", { class: "chip judge", title: judged.reason || "" }, `judge: ${judged.emotion ?? "?"}${judged.intensity !== undefined ? ` · ${judged.intensity}` : ""}`) : null),
      h("div", { class: "text" }, turn.user.c)));
  }
  const results = new Map(turn.items.filter((m) => m.r === "t").map((m) => [m.id, m]));
  const shown = new Set();
  for (const m of turn.items) {
    if (m.r === "a" || m.r === "ut") {
      const parts = [h("div", { class: "who" }, m.r === "ut" ? "User · own tool" : "Agent",
        ...(m.f || []).map((k) => h("span", { class: `chip fault${m.ff === k ? " first" : ""}`, title: "failure anatomy" }, k.replace(/_/g, " "))))];
      if (m.c) parts.push(h("div", { class: "text" }, m.c));
      for (const call of m.tc || []) {
        const result = results.get(call.id);
        if (result) shown.add(result);
        parts.push(h("div", { class: "tool" },
          h("div", { class: "call" }, "→ ", h("b", {}, call.name)),
          h("pre", { class: "args" }, pretty(call.args)),
          result ? folded(result.c, `result${/^error/i.test(result.c) ? " error" : ""}`) : h("div", { class: "muted" }, "(not run)")));
      }
      out.push(h("div", { class: m.r === "ut" ? "msg user usertool" : `msg agent${m.ff ? " firstfault" : ""}`, id: m.ff ? "first-fault" : null }, parts));
    } else if (m.r === "t" && !shown.has(m)) {
      out.push(h("div", { class: "msg agent" }, h("div", { class: "who" }, "Tool result"), folded(m.c, "result")));
    }
  }
  return out;
}
function divergence(body) {
  if (!body.has_reward_info) return null;
  const gt = body.gt_actions;
  const agent = body.actions;
  for (let i = 0; i < Math.max(gt.length, agent.length); i++) {
    const a = gt[i];
    const b = agent[i];
    if (!a || !b || a.name !== b.name || stable(a.kwargs) !== stable(b.kwargs)) return i;
  }
  return -1;
}
function divergenceText(body, diverge) {
  if (diverge === null) return "Not scored: no ground truth recorded.";
  return diverge < 0 ? "The agent's tool actions match the ground truth." : `First divergence from the ground truth at action ${diverge + 1}.`;
}
function actionsTable(body) {
  const gt = body.gt_actions;
  const agent = body.actions;
  const diverge = divergence(body);
  const cell = (action) => (action ? [h("b", {}, action.name), " ", h("code", {}, stable(action.kwargs))] : h("span", { class: "muted" }, "—"));
  const rows = Array.from({ length: Math.max(gt.length, agent.length) }, (_, i) => h("tr", { class: i === diverge ? "diverge" : diverge !== null && diverge >= 0 && i > diverge ? "after" : "" },
    h("td", {}, i + 1), h("td", {}, cell(gt[i])), h("td", {}, cell(agent[i]))));
  const note = divergenceText(body, diverge) + (diverge === null || diverge < 0 ? "" : " (τ-bench scores the final database and the outputs, so read-only actions in another order may still succeed.)");
  return [
    h("p", { class: diverge === null || diverge < 0 ? "muted" : "diverge-note", id: "divergence" }, note),
    h("table", { class: "actions" }, h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "ground truth"), h("th", {}, "agent"))), h("tbody", {}, rows)),
  ];
}
function anatomyList(body) {
  const a = body.anatomy || { main: "", faults: [] };
  if (!body.scored) return [h("p", { class: "muted", id: "anatomy" }, "Not scored: no failure anatomy.")];
  if (!a.faults.length) return [h("p", { class: "muted", id: "anatomy" }, "Failure anatomy: no fault found.")];
  return [
    h("p", { id: "anatomy" }, "Failure anatomy: ", h("b", {}, a.main.replace(/_/g, " ")),
      body.anatomy.faults.some((f) => f.m !== null) ? h("a", { href: "#", onclick: (e) => { e.preventDefault(); document.getElementById("first-fault")?.scrollIntoView({ block: "center" }); } }, " (first write at fault)") : null),
    h("ul", { class: "faults" }, a.faults.map((f) => h("li", {}, h("span", { class: "chip fault" }, f.k.replace(/_/g, " ")), " ", f.d))),
  ];
}
function outputsList(body) {
  const parts = [];
  if (body.r_actions !== null && body.r_actions !== undefined) {
    parts.push(h("p", {}, `Final database ${body.r_actions ? "matches" : "does not match"} the ground truth.`));
  }
  if (body.outputs) {
    parts.push(h("ul", { class: "outputs" }, Object.entries(body.outputs).map(([text, found]) => h("li", { class: found ? "found" : "missing" }, found ? "✓ found: " : "✗ missing: ", h("code", {}, text)))));
  }
  return parts;
}
function summaryLine(row, body) {
  return h("div", { class: `outcome o${C.outcome[row]}` },
    h("span", { class: `badge o${C.outcome[row]}` }, OUTCOME[C.outcome[row]], C.outcome[row] === -1 ? "" : ` · reward ${C.reward[row]}`),
    ` ${cat("termination", row)} · ${C.turns[row]} user turns · ${C.tool_errors[row]} tool errors · ${C.tokens[row]} tokens`,
    body && body.error ? h("div", { class: "error" }, body.error) : null);
}
function title(row) {
  return `${cat("env", row)} · task ${C.task[row]} · trial ${C.trial[row]} · ${cat("variant", row)}${cat("intensity", row) ? ` (${cat("intensity", row)})` : ""} · ${label(cat("model", row))}`;
}
function neighbour(row, step) {
  if (!view.length) view = filtered();
  const at = view.indexOf(row);
  if (at >= 0) return view[at + step];
  return step > 0 ? view.find((r) => r > row) : [...view].reverse().find((r) => r < row);
}
function navBar(row, side) {
  const prev = neighbour(row, -1);
  const next = neighbour(row, 1);
  const go = (r) => (r === undefined ? null : side ? sideHash(partner(r) ?? r, r) : conversationHash(r));
  return h("nav", { class: "convnav" },
    h("a", { href: `#/${stateQuery()}`, id: "back" }, "← index"),
    h("a", { href: go(prev), id: "prev", class: prev === undefined ? "off" : "" }, "previous"),
    h("a", { href: go(next), id: "next", class: next === undefined ? "off" : "" }, "next"),
    h("span", { class: "muted" }, view.includes(row) ? `${view.indexOf(row) + 1} of ${view.length}${state.failed ? " failed" : ""}` : "not in the current filter"),
    side ? h("a", { href: conversationHash(row), id: "single" }, "this conversation alone")
      : partner(row) !== undefined ? h("a", { href: sideHash(partner(row), row), id: "side" }, `side by side with ${cat("variant", partner(row))}`) : null);
}
let current = null;
function showConversation(row) {
  current = { row, side: false };
  indexParts = null;
  document.title = title(row);
  app.replaceChildren(navBar(row, false), h("h2", {}, title(row)), summaryLine(row, null), h("p", { class: "muted" }, "Loading…"));
  getBody(row).then((body) => {
    if (current.row !== row || current.side) return;
    const policy = h("details", { class: "policy", ontoggle: (e) => {
      if (e.target.open && !e.target.dataset.loaded) {
        e.target.dataset.loaded = "1";
        getPolicy(body.policy).then((text) => e.target.appendChild(h("pre", {}, text || "(no system prompt recorded)")));
      }
    } }, h("summary", {}, "agent's policy (system prompt)"));
    app.replaceChildren(
      navBar(row, false),
      h("h2", {}, title(row)),
      summaryLine(row, body),
      h("p", { class: "muted" }, `job ${cat("job", row)} · seed ${body.seed} · user ${body.user_id} · ${body.affect.some(Boolean) ? `emotion from user turn ${body.onset + 1}` : "no emotion in this conversation"}`),
      h("section", { class: "instruction" }, h("h3", {}, "Instruction"), h("div", { class: "text" }, body.instruction),
        body.affect_words.length ? h("p", { class: "muted" }, `mood words in the instruction: ${body.affect_words.join(", ")}`) : null),
      h("section", { class: "scoring" }, h("h3", {}, "Scoring"), anatomyList(body), outputsList(body), actionsTable(body)),
      policy,
      intensityChart(body),
      h("section", { class: "chat", id: "chat" }, groupTurns(body.messages).map((turn) => renderTurn(turn, body, row))));
  }, (error) => app.appendChild(h("p", { class: "problem" }, error.message)));
}

// ---------- side by side ----------
function sideHeader(row, other, left) {
  const options = sameGroup(row).map((r) => [r, `${cat("variant", r)}${cat("intensity", r) ? ` (${cat("intensity", r)})` : ""} · ${cat("job", r)}`]);
  return h("div", { class: "sidehead" },
    h("select", { class: "pick", id: left ? "pick-a" : "pick-b", onchange: (e) => {
      const r = Number(e.target.value);
      location.hash = left ? sideHash(r, other) : sideHash(other, r);
    } }, options.map(([r, text]) => h("option", { value: r, selected: r === row }, text))),
    h("a", { href: conversationHash(row) }, " open"));
}
function showSideBySide(a, b) {
  current = { row: b, side: true };
  indexParts = null;
  document.title = `${title(a)} | ${title(b)}`;
  app.replaceChildren(navBar(b, true), h("p", { class: "muted" }, "Loading…"));
  Promise.all([getBody(a), getBody(b)]).then(([bodyA, bodyB]) => {
    if (current.row !== b || !current.side) return;
    const turnsA = groupTurns(bodyA.messages);
    const turnsB = groupTurns(bodyB.messages);
    const grid = [];
    for (let i = 0; i < Math.max(turnsA.length, turnsB.length); i++) {
      grid.push(h("div", { class: "turnrow" },
        h("div", { class: "cell a" }, turnsA[i] ? renderTurn(turnsA[i], bodyA, a) : null),
        h("div", { class: "cell b" }, turnsB[i] ? renderTurn(turnsB[i], bodyB, b) : null)));
    }
    app.replaceChildren(
      navBar(b, true),
      h("h2", {}, `${cat("env", b)} · task ${C.task[b]} · trial ${C.trial[b]} · ${label(cat("model", b))}`),
      h("div", { class: "turnrow top" },
        h("div", { class: "cell a", id: "side-a" }, sideHeader(a, b, true), summaryLine(a, bodyA), outputsList(bodyA), h("p", { class: "muted" }, divergenceText(bodyA, divergence(bodyA)))),
        h("div", { class: "cell b", id: "side-b" }, sideHeader(b, a, false), summaryLine(b, bodyB), outputsList(bodyB), h("p", { class: "muted" }, divergenceText(bodyB, divergence(bodyB))))),
      h("details", { class: "instruction" }, h("summary", {}, "Instruction"), h("div", { class: "text" }, bodyB.instruction)),
      h("section", { class: "side", id: "side" }, grid));
  }, (error) => app.appendChild(h("p", { class: "problem" }, error.message)));
}

// ---------- keyboard ----------
document.addEventListener("keydown", (e) => {
  const el = document.activeElement;
  const typing = ["SELECT", "TEXTAREA"].includes(el.tagName) || (el.tagName === "INPUT" && !["checkbox", "radio"].includes(el.type));
  if (typing) {
    if (e.key === "Escape") document.activeElement.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const onIndex = indexParts !== null;
  if (e.key === "f") {
    state.failed = !state.failed;
    view = filtered();
    if (onIndex) { showIndex(); history.replaceState(null, "", `#/${stateQuery()}`); } else route();
  } else if (onIndex && ["j", "k", "ArrowDown", "ArrowUp"].includes(e.key)) {
    const step = e.key === "j" || e.key === "ArrowDown" ? 1 : -1;
    state.sel = Math.max(0, Math.min(view.length - 1, state.sel + step));
    const page = Math.floor(state.sel / PAGE);
    if (page !== state.page) state.page = page;
    renderIndexBody();
    const sel = document.querySelector("#rows tr.sel");
    if (sel) sel.scrollIntoView({ block: "nearest" });
    e.preventDefault();
  } else if (onIndex && (e.key === "Enter" || e.key === "o") && view.length) {
    location.hash = conversationHash(view[state.sel]);
  } else if (onIndex && e.key === "/") {
    document.getElementById("search").focus();
    e.preventDefault();
  } else if (!onIndex && current && ["n", "p", "ArrowRight", "ArrowLeft"].includes(e.key)) {
    const link = document.getElementById(e.key === "n" || e.key === "ArrowRight" ? "next" : "prev");
    if (link && link.getAttribute("href")) location.hash = link.getAttribute("href");
  } else if (!onIndex && e.key === "s") {
    const link = document.getElementById(current && current.side ? "single" : "side");
    if (link) location.hash = link.getAttribute("href");
  } else if (!onIndex && (e.key === "u" || e.key === "Escape")) {
    if (current) state.sel = Math.max(0, view.indexOf(current.row));
    state.page = Math.floor(state.sel / PAGE);
    location.hash = `#/${stateQuery()}`;
  }
});

window.addEventListener("hashchange", route);
route();
window.VIEWER_READY = true;
window.VIEWER_READY_MS = performance.now();
