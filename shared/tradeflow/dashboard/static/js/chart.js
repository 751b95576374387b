// The equity curve, drawn with TradingView's lightweight-charts. The library is built by `make
// dashboard` (npm ci, then the standalone ES module copied into static/vendor/): it is loaded from this
// origin only, and when it was not built the chart area says so instead of breaking the page.

import { el } from "./dom.js";
import { seconds } from "./format.js";

const LIBRARY = "/dashboard/vendor/lightweight-charts.standalone.production.mjs";

async function loadLibrary() {
  try {
    return await import(LIBRARY);
  } catch (error) {
    console.warn("chart library unavailable", error);
    return null;
  }
}

/** The curve's points as chart data: one value per second (the chart's resolution), the last state of that second. */
function toData(points) {
  const bySecond = new Map();
  for (const p of points) bySecond.set(seconds(p.ts), Number(p.equity));
  return [...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time, value }));
}

export class EquityChart {
  constructor(container) {
    this.container = container;
    this.series = null;
    this.chart = null;
    this.lastTime = null;
    this.count = 0;
  }

  async init() {
    const lib = await loadLibrary();
    if (!lib) {
      this.container.dataset.state = "missing-library";
      this.container.replaceChildren(el("div", { class: "notice", role: "status",
        text: "The chart library was not built: run `make dashboard` (npm ci, then it is copied into the dashboard's static/vendor/)." }));
      return false;
    }
    this.chart = lib.createChart(this.container, {
      autoSize: true,
      // the library's logo injects a <style> element, which the page's CSP refuses: the attribution its
      // licence asks for is a plain link under the chart instead (index.html)
      layout: { background: { type: lib.ColorType.Solid, color: "#161b22" }, textColor: "#8792a2", attributionLogo: false },
      grid: { vertLines: { color: "#1f2633" }, horzLines: { color: "#1f2633" } },
      rightPriceScale: { borderColor: "#2a3140" },
      timeScale: { borderColor: "#2a3140", timeVisible: true, secondsVisible: false },
      crosshair: { mode: lib.CrosshairMode.Normal },
    });
    this.series = this.chart.addSeries(lib.AreaSeries, {
      lineColor: "#4d9bff", topColor: "rgba(77, 155, 255, 0.35)", bottomColor: "rgba(77, 155, 255, 0.02)", lineWidth: 2,
      priceFormat: { type: "price", precision: 2, minMove: 0.01 },
    });
    this.container.dataset.state = "ready";
    return true;
  }

  /** Replace the whole curve. */
  set(points) {
    const data = toData(points);
    this.count = data.length;
    this.lastTime = data.length ? data[data.length - 1].time : null;
    this.container.dataset.points = String(this.count);
    if (!this.series) return;
    this.series.setData(data);
    this.chart.timeScale().fitContent();
  }

  /** Extend the curve with newer points (older or equal times than the last are already drawn). */
  extend(points) {
    for (const point of toData(points)) {
      if (this.lastTime !== null && point.time < this.lastTime) continue;
      if (point.time !== this.lastTime) this.count += 1;
      this.lastTime = point.time;
      if (this.series) this.series.update(point);
    }
    this.container.dataset.points = String(this.count);
  }

  destroy() {
    if (this.chart) this.chart.remove();
    this.chart = null;
    this.series = null;
  }
}
