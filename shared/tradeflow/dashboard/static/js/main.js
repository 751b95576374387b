// The dashboard's entry point: sign-in with a token, the initial REST load of the selected account,
// live updates over the WebSocket API merged into the same lists, and the kill switch.

import { Api, ApiError } from "./api.js";
import { EquityChart } from "./chart.js";
import { $, banner, clearBanner } from "./dom.js";
import { LiveClient } from "./live.js";
import * as tables from "./tables.js";
import { claimsOf, clearToken, readToken, secondsLeft, storeToken } from "./token.js";

const ACCOUNT_KEY = "tradeflow.account";
const LIST_LIMIT = 100; // rows fetched per list
const MAX_ROWS = 200; // rows kept per list as live updates arrive
const MAX_ALERTS = 100;
const EQUITY_POINTS = 2000;
const POLL_MS = 30_000;
const RETRY_MS = 10_000; // the first load again, after a failure that was not the token's // REST refresh when live updates are not configured
const BOOKS_DEBOUNCE_MS = 1000; // after fills and positions: summary and equity
const MARKS_DEBOUNCE_MS = 2000; // after quotes of held symbols: marks, summary and equity

const state = {
  config: { ws_url: null, api_base: "/v1" },
  api: null,
  token: null,
  live: null,
  chart: null,
  poller: null,
  account: null,
  orders: new Map(),
  fills: new Map(),
  fillOrigins: new Map(), // fill id -> "rest" | "live": how the page first learnt of it
  positions: new Map(),
  deployments: [],
  statuses: new Map(),
  evaluations: new Map(), // "deployment|symbol" -> the latest evaluation seen live
  controls: new Map(), // "scope|target" -> control
  alerts: [],
  freshOrders: new Set(),
  freshFills: new Set(),
  lastEquityTs: null,
  timers: new Map(),
};

// -- helpers ------------------------------------------------------------------------------------------

function byNewest(field) {
  return (a, b) => (a[field] < b[field] ? 1 : a[field] > b[field] ? -1 : 0);
}

/** Keep the newest MAX_ROWS entries of `map` (ordered by `field`). */
function trim(map, field) {
  if (map.size <= MAX_ROWS) return;
  const entries = [...map.entries()].sort((a, b) => byNewest(field)(a[1], b[1]));
  for (const [key] of entries.slice(MAX_ROWS)) map.delete(key);
}

/** Run `fn` once, `ms` from the first call since it last ran (coalesces bursts of updates). */
function debounce(key, ms, fn) {
  if (state.timers.has(key)) return;
  state.timers.set(key, setTimeout(() => {
    state.timers.delete(key);
    fn();
  }, ms));
}

function setConnection(name, detail = "") {
  const pill = $("#conn-status");
  const labels = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", offline: "offline",
    unconfigured: "live updates not configured", error: "live updates failed" };
  pill.dataset.state = name;
  pill.textContent = labels[name] || name;
  pill.title = detail;
}

/** Await a REST load; show its error (the API's `detail`) in a banner keyed by `key`, clear it on success. */
async function guard(key, what, promise) {
  try {
    const result = await promise;
    clearBanner(key);
    return result;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(`The API rejected the token: ${error.detail}`);
    } else {
      banner(key, "error", `${what}: ${error instanceof ApiError ? error.detail : error.message}`);
    }
    return undefined;
  }
}

// -- REST loads ---------------------------------------------------------------------------------------

async function loadSummary() {
  const view = await guard("load-summary", "Portfolio", state.api.get(`/portfolio/${encodeURIComponent(state.account)}`));
  if (view) tables.renderSummary(view);
}

async function loadPositions() {
  const page = await guard("load-positions", "Positions", state.api.get("/positions", { account_id: state.account, limit: LIST_LIMIT }));
  if (!page) return;
  state.positions = new Map(page.items.map((p) => [`${p.account_id}|${p.symbol}`, p]));
  renderPositions();
}

async function loadOrders() {
  const page = await guard("load-orders", "Orders", state.api.get("/orders", { account_id: state.account, limit: LIST_LIMIT }));
  if (!page) return;
  state.orders = new Map(page.items.map((o) => [o.client_order_id, o]));
  tables.renderOrders([...state.orders.values()].sort(byNewest("created_at")), state.freshOrders);
}

async function loadFills() {
  const page = await guard("load-fills", "Fills", state.api.get("/fills", { account_id: state.account, limit: LIST_LIMIT }));
  if (!page) return;
  state.fills = new Map(page.items.map((f) => [f.fill_id, f]));
  for (const f of page.items) if (!state.fillOrigins.has(f.fill_id)) state.fillOrigins.set(f.fill_id, "rest");
  renderFills();
}

async function loadEquity() {
  const path = `/portfolio/${encodeURIComponent(state.account)}/equity`;
  const curve = await guard("load-equity", "Equity curve", state.api.get(path, { limit: EQUITY_POINTS }));
  if (!curve) return;
  state.chart.set(curve.points);
  state.lastEquityTs = curve.points.length ? curve.points[curve.points.length - 1].ts : null;
  $("#equity-empty").hidden = curve.points.length > 0;
  $("#equity-meta").textContent = `${curve.currency} · marked to ${curve.timeframe} bars${curve.sampled ? " · sampled" : ""}`;
}

/** Append what happened since the curve's last point (the API replays the records after it). */
async function extendEquity() {
  if (!state.lastEquityTs) return loadEquity();
  const path = `/portfolio/${encodeURIComponent(state.account)}/equity`;
  const since = state.lastEquityTs;
  const curve = await guard("load-equity", "Equity curve", state.api.get(path, { since, limit: EQUITY_POINTS }));
  if (!curve) return undefined;
  const newer = curve.points.filter((p) => new Date(p.ts) > new Date(since));
  if (newer.length) {
    state.chart.extend(newer);
    state.lastEquityTs = newer[newer.length - 1].ts;
    $("#equity-empty").hidden = true;
  }
  return undefined;
}

async function loadDeployments() {
  const page = await guard("load-deployments", "Deployments", state.api.get("/deployments", { limit: LIST_LIMIT }));
  if (!page) return;
  state.deployments = page.items;
  const statuses = await Promise.all(page.items.map((d) =>
    guard(`load-status-${d.deployment_id}`, `Deployment ${d.deployment_id}`,
      state.api.get(`/deployments/${encodeURIComponent(d.deployment_id)}/status`))));
  state.statuses = new Map(page.items.map((d, i) => [d.deployment_id, statuses[i]]));
  renderDeployments();
}

async function loadControls() {
  const view = await guard("load-controls", "Trading controls", state.api.get("/controls", { limit: LIST_LIMIT }));
  if (!view) return;
  state.controls = new Map(view.items.map((c) => [`${c.scope}|${c.target}`, c]));
  if (view.global_halt) state.controls.set(`global_halt|${view.global_halt.target}`, view.global_halt);
  tables.renderControls(state.controls);
}

function loadAccount() {
  return Promise.all([loadSummary(), loadPositions(), loadOrders(), loadFills(), loadEquity()]);
}

function loadEverything() {
  return Promise.all([loadAccount(), loadDeployments(), loadControls()]);
}

// -- rendering from the store --------------------------------------------------------------------------

function renderPositions() {
  const open = [...state.positions.values()].filter((p) => Number(p.quantity) !== 0).sort((a, b) => a.symbol.localeCompare(b.symbol));
  tables.renderPositions(open);
  if (state.live) state.live.setQuotes(open.map((p) => p.symbol));
}

function renderFills() {
  tables.renderFills([...state.fills.values()].sort(byNewest("ts")), state.fillOrigins, state.freshFills);
}

function renderDeployments() {
  tables.renderDeployments(state.deployments, state.statuses, state.evaluations);
}

// -- live updates --------------------------------------------------------------------------------------

function mine(data) {
  return data.account_id === undefined || data.account_id === state.account;
}

const channels = {
  orders(order) {
    if (!mine(order)) return;
    state.orders.set(order.client_order_id, order);
    state.freshOrders.add(order.client_order_id);
    trim(state.orders, "created_at");
    tables.renderOrders([...state.orders.values()].sort(byNewest("created_at")), state.freshOrders);
  },
  fills(fill) {
    if (!mine(fill) || state.fills.has(fill.fill_id)) return;
    state.fills.set(fill.fill_id, fill);
    state.fillOrigins.set(fill.fill_id, "live");
    state.freshFills.add(fill.fill_id);
    trim(state.fills, "ts");
    renderFills();
    debounce("books", BOOKS_DEBOUNCE_MS, () => Promise.all([loadSummary(), extendEquity()]));
  },
  positions(position) {
    if (!mine(position)) return;
    const key = `${position.account_id}|${position.symbol}`;
    if (Number(position.quantity) === 0) state.positions.delete(key);
    else state.positions.set(key, position);
    renderPositions();
    debounce("books", BOOKS_DEBOUNCE_MS, () => Promise.all([loadSummary(), extendEquity()]));
  },
  signals(evaluation) {
    const key = `${evaluation.deployment_id}|${evaluation.symbol}`;
    const known = state.evaluations.get(key);
    if (known && known.evaluated_at > evaluation.evaluated_at) return;
    state.evaluations.set(key, evaluation);
    renderDeployments();
  },
  controls(control) {
    state.controls.set(`${control.scope}|${control.target || "*"}`, control);
    tables.renderControls(state.controls);
  },
  alerts(alert) {
    state.alerts.unshift(alert);
    state.alerts.length = Math.min(state.alerts.length, MAX_ALERTS);
    tables.renderAlerts(state.alerts);
  },
};

function onUpdate(channel, data) {
  if (channel in channels) channels[channel](data);
  else if (channel.startsWith("quotes:") && state.positions.has(`${state.account}|${channel.slice(7)}`)) {
    debounce("marks", MARKS_DEBOUNCE_MS, () => Promise.all([loadPositions(), loadSummary(), extendEquity()]));
  }
}

function onLiveState(name, detail) {
  setConnection(name, detail);
  if (name === "live") clearBanner("live");
  else if (name === "reconnecting") banner("live", "warning", `Live updates interrupted: ${detail}`);
  else if (name === "error") banner("live", "error", `Live updates failed: ${detail}`);
}

/** Refetch everything over REST; `body[data-synced]` says whether the lists caught up since the last gap. */
async function resync() {
  state.syncs = (state.syncs || 0) + 1;
  const mine = state.syncs;
  document.body.dataset.synced = "false";
  await loadEverything();
  if (mine === state.syncs) document.body.dataset.synced = "true";
}

function startLive() {
  if (!state.config.ws_url) {
    setConnection("unconfigured", "TRADEFLOW_WS_URL is not set on the API");
    banner("live", "info", `Live updates are not configured (the API has no TRADEFLOW_WS_URL): showing REST data, refreshed every ${POLL_MS / 1000} s.`);
    state.poller = setInterval(loadEverything, POLL_MS);
    return;
  }
  state.live = new LiveClient(state.config.ws_url, () => {
    const left = secondsLeft(state.token);
    if (left !== null && left <= 0) {
      signOut("The token expired: paste a new one to continue.");
      return null;
    }
    return state.token;
  }, {
    onUpdate,
    onState: onLiveState,
    onGap: resync, // lost updates (or a new connection): refetch the lists over REST
    onServerError: (frame) => banner("live-error", "error", `Live updates: ${frame.message}`),
  });
  state.live.setQuotes([...state.positions.values()].map((p) => p.symbol));
  state.live.start();
}

// -- sign-in, accounts, kill switch ----------------------------------------------------------------------

function showGate(message = "") {
  $("#app").hidden = true;
  $("#token-gate").hidden = false;
  $("#sign-out").hidden = true;
  $("#kill-switch").disabled = true;
  $("#whoami").textContent = "";
  $("#token-error").textContent = message;
  setConnection("offline");
}

function signOut(message = "") {
  if (state.live) state.live.stop();
  state.live = null;
  clearInterval(state.poller);
  clearToken();
  state.token = null;
  if (message) banner("auth", "error", message);
  showGate(message);
}

async function chooseAccount(accountId) {
  state.account = accountId;
  sessionStorage.setItem(ACCOUNT_KEY, accountId);
  state.orders.clear();
  state.fills.clear();
  state.positions.clear();
  state.lastEquityTs = null;
  await loadAccount();
}

async function start(token) {
  const left = secondsLeft(token);
  if (left !== null && left <= 0) {
    signOut("The token has expired: paste a new one.");
    return;
  }
  state.token = token;
  state.api = new Api(state.config.api_base, token);
  const claims = claimsOf(token) || {};
  const accounts = await guard("load-accounts", "Accounts", state.api.get("/accounts", { limit: LIST_LIMIT }));
  if (!accounts) {
    // a rejected token is back at the gate; any other failure is in a banner, and is tried again
    if (state.token === token) setTimeout(() => state.token === token && start(token), RETRY_MS);
    return;
  }
  clearBanner("auth");
  $("#token-gate").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  $("#kill-switch").disabled = false;
  $("#whoami").textContent = `${claims.tenant || "?"} / ${claims.sub || "?"}`;

  const select = $("#account-select");
  select.replaceChildren(...accounts.items.map((a) => {
    const option = document.createElement("option");
    option.value = a.account_id;
    option.textContent = `${a.name || a.account_id} (${a.account_id} · ${a.mode || a.kind || ""})`;
    return option;
  }));
  select.disabled = accounts.items.length === 0;
  tables.renderAlerts(state.alerts);
  if (!state.chart) {
    state.chart = new EquityChart($("#equity-chart"));
    await state.chart.init();
  }
  if (accounts.items.length === 0) {
    banner("accounts", "info", "This tenant has no accounts yet: create one with POST /v1/accounts.");
    await Promise.all([loadDeployments(), loadControls()]);
  } else {
    const saved = sessionStorage.getItem(ACCOUNT_KEY);
    const account = accounts.items.some((a) => a.account_id === saved) ? saved : accounts.items[0].account_id;
    select.value = account;
    await Promise.all([chooseAccount(account), loadDeployments(), loadControls()]);
  }
  startLive();
}

function wireKillSwitch() {
  const button = $("#kill-switch");
  const dialog = $("#kill-dialog");
  button.addEventListener("click", () => {
    const on = button.dataset.active === "true";
    const tenant = (claimsOf(state.token) || {}).tenant || "this tenant";
    $("#kill-dialog-title").textContent = on ? "Release the kill switch" : "Activate the kill switch";
    $("#kill-dialog-text").textContent = on
      ? `Trading of ${tenant} resumes at the next risk decision.`
      : `Stop all trading of ${tenant}: every strategy signal and manual order is rejected at the risk gate until released.`;
    $("#kill-reason").value = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "confirm") return;
    const active = button.dataset.active !== "true";
    button.disabled = true;
    try {
      const control = await state.api.post("/controls/kill-switch", { active, reason: $("#kill-reason").value.trim() });
      clearBanner("kill");
      state.controls.set(`${control.scope}|${control.target}`, control);
      tables.renderControls(state.controls);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) signOut(`The API rejected the token: ${error.detail}`);
      else banner("kill", "error", `Kill switch: ${error instanceof ApiError ? error.detail : error.message}`);
    } finally {
      button.disabled = false;
    }
  });
}

function wire() {
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("#token-input").value.trim();
    if (!value) {
      $("#token-error").textContent = "Paste a token first.";
      return;
    }
    if (!claimsOf(value)) {
      $("#token-error").textContent = "That is not a JWT (three base64url parts separated by dots).";
      return;
    }
    $("#token-input").value = "";
    storeToken(value);
    start(value);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#account-select").addEventListener("change", (event) => chooseAccount(event.target.value).then(renderPositions));
  $("#alerts-clear").addEventListener("click", () => {
    state.alerts = [];
    tables.renderAlerts(state.alerts);
  });
  wireKillSwitch();
}

async function boot() {
  wire();
  try {
    const response = await fetch("/dashboard/config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    state.config = { ...state.config, ...(await response.json()) };
  } catch (error) {
    banner("config", "error", `Cannot load the dashboard's configuration (${error.message}): live updates are off.`);
  }
  const token = readToken();
  if (token) await start(token);
  else showGate();
}

boot();
