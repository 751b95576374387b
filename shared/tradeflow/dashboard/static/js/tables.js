// Rendering of the live lists: positions, orders, fills, deployments (with their last signals),
// controls and alerts. Each render replaces the rows of its table from the store's current records.

import { el, markEmpty } from "./dom.js";
import { amount, price, quantity, signClass, time } from "./format.js";

function td(text, cls) {
  return el("td", { class: cls, text: text ?? "—" });
}

function status(value) {
  return el("td", {}, el("span", { class: "status", dataset: { status: value || "" }, text: value || "—" }));
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

export function renderPositions(positions) {
  const rows = positions.map((p) =>
    el("tr", { dataset: { symbol: p.symbol } },
      td(p.symbol),
      td(p.side, `side-${p.side}`),
      td(quantity(p.quantity), "num"),
      td(price(p.average_price), "num"),
      el("td", { class: "num", title: `mark: ${p.mark_source}`, text: price(p.mark_price) }),
      td(amount(p.market_value), "num"),
      td(amount(p.unrealized_pnl), `num ${signClass(p.unrealized_pnl)}`),
      td(amount(p.realized_pnl), `num ${signClass(p.realized_pnl)}`)));
  fill(document.querySelector("#positions tbody"), rows);
  document.querySelector("#positions-count").textContent = positions.length ? `${positions.length} open` : "";
  markEmpty("positions", positions.length === 0);
}

export function renderOrders(orders, fresh) {
  const rows = orders.map((o) =>
    el("tr", { class: fresh.has(o.client_order_id) ? "flash" : "", dataset: { clientOrderId: o.client_order_id, status: o.status } },
      td(time(o.created_at)),
      td(o.symbol),
      td(o.side, `side-${o.side}`),
      td(quantity(o.quantity), "num"),
      td(o.type),
      status(o.status),
      td(quantity(o.filled_quantity), "num"),
      td(price(o.average_fill_price), "num"),
      td(o.deployment_id ? `${o.source} · ${o.deployment_id}` : o.source),
      td(o.client_order_id, "id"),
      td(o.reason || "", "reason")));
  fill(document.querySelector("#orders tbody"), rows);
  markEmpty("orders", orders.length === 0);
}

export function renderFills(fills, origins, fresh) {
  const rows = fills.map((f) =>
    el("tr", {
      class: fresh.has(f.fill_id) ? "flash" : "",
      dataset: { fillId: f.fill_id, clientOrderId: f.client_order_id, origin: origins.get(f.fill_id) || "rest" },
    },
      td(time(f.ts)),
      td(f.symbol),
      td(f.side, `side-${f.side}`),
      td(quantity(f.quantity), "num"),
      td(price(f.price), "num"),
      td(amount(f.notional), "num"),
      td(amount(f.fee), "num"),
      td(f.client_order_id, "id"),
      td(f.fill_id, "id")));
  fill(document.querySelector("#fills tbody"), rows);
  markEmpty("fills", fills.length === 0);
}

function reasonText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function reasons(evaluation) {
  const entries = Object.entries((evaluation && evaluation.reasons) || {});
  if (!entries.length) return el("span", { class: "muted", text: "—" });
  return el("ul", { class: "reasons" }, ...entries.map(([rule, verdict]) => el("li", {}, el("b", { text: `${rule}: ` }), reasonText(verdict))));
}

/** Deployments, each with a row per symbol: its schedule and its latest evaluation (signal). */
export function renderDeployments(deployments, statuses, evaluations) {
  const host = document.querySelector("#deployments");
  const cards = deployments.map((d) => {
    const status = statuses.get(d.deployment_id);
    const bySymbol = new Map(((status && status.symbols) || []).map((s) => [s.symbol, s]));
    const rows = d.symbols.map((symbol) => {
      const evaluation = evaluations.get(`${d.deployment_id}|${symbol}`) || (bySymbol.get(symbol) || {}).latest_evaluation;
      const action = evaluation ? evaluation.action : null;
      return el("tr", { dataset: { symbol } },
        td(symbol),
        td((bySymbol.get(symbol) || {}).schedule_state || "—"),
        td(action || "—", action ? `action-${action}` : ""),
        td(evaluation ? evaluation.status : "—"),
        td(evaluation ? time(evaluation.bar_time) : "—"),
        td(evaluation ? time(evaluation.evaluated_at) : "—"),
        el("td", { class: "reason" }, reasons(evaluation)));
    });
    return el("div", { class: "deployment", dataset: { deploymentId: d.deployment_id } },
      el("div", { class: "title" },
        el("span", { class: "name", text: d.name || d.deployment_id }),
        el("span", { class: "muted", text: `${d.strategy} · ${d.mode} · account ${d.account_id} · ${d.schedule} · ${d.timeframe}` }),
        el("span", { class: "status", dataset: { status: d.status }, text: d.status })),
      el("table", { class: "data" },
        el("thead", {}, el("tr", {}, ...["Symbol", "Schedule", "Last signal", "Status", "Bar", "Evaluated", "Rule reasons"].map((h) => el("th", { text: h })))),
        el("tbody", {}, ...rows)));
  });
  host.replaceChildren(...cards);
  markEmpty("deployments", deployments.length === 0);
}

const STOPPING = new Set(["global_halt", "tenant_disabled", "kill_switch"]);

/** The controls card and the kill-switch button, from the active controls. Returns whether trading is halted. */
export function renderControls(controls) {
  const active = [...controls.values()].filter((c) => c.active);
  const halted = active.some((c) => STOPPING.has(c.scope));
  const kill = controls.get("kill_switch|*");
  const line = document.querySelector("#trading-state");
  line.dataset.halted = String(halted);
  line.textContent = halted
    ? `Trading halted: ${active.filter((c) => STOPPING.has(c.scope)).map((c) => c.scope.replace("_", " ") + (c.reason ? ` (${c.reason})` : "")).join("; ")}`
    : "Trading enabled";
  document.querySelector("#controls-list").replaceChildren(...active.map((c) =>
    el("li", { dataset: { scope: c.scope } },
      el("b", { text: c.scope.replace(/_/g, " ") }),
      c.target && c.target !== "*" ? ` ${c.target}` : "",
      c.reason ? ` — ${c.reason}` : "",
      el("span", { class: "muted", text: ` · ${c.set_by || ""} · ${time(c.updated_at)}` }))));
  const button = document.querySelector("#kill-switch");
  const on = Boolean(kill && kill.active);
  button.dataset.active = String(on);
  button.textContent = on ? "Release kill switch" : "Kill switch";
  return halted;
}

export function renderAlerts(alerts) {
  document.querySelector("#alerts").replaceChildren(...alerts.map((a) =>
    el("li", { dataset: { severity: a.severity || "info", kind: a.kind || "" } },
      el("span", { class: "when", text: `${time(a.ts)} · ${a.kind || "alert"}${a.symbol ? ` · ${a.symbol}` : ""}${a.account_id ? ` · ${a.account_id}` : ""}` }),
      a.message || "")));
  markEmpty("alerts", alerts.length === 0);
}

export function renderSummary(view) {
  for (const node of document.querySelectorAll("#summary [data-field]")) {
    const value = view ? view[node.dataset.field] : null;
    node.textContent = amount(value);
    node.className = `value ${["unrealized_pnl", "realized_pnl", "total_pnl"].includes(node.dataset.field) ? signClass(value) : ""}`;
  }
}
