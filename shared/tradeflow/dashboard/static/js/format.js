// Display formatting. Amounts arrive as exact decimal strings; they are turned into numbers only to be
// shown (grouping, fixed decimals), never to be computed with and sent back.

const money = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const plain = new Intl.NumberFormat("en-US", { maximumFractionDigits: 8 });

export function amount(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  return Number.isFinite(n) ? money.format(n) : String(value);
}

export function quantity(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  return Number.isFinite(n) ? plain.format(n) : String(value);
}

export function price(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return Math.abs(n) >= 100 ? money.format(n) : plain.format(Number(n.toPrecision(8)));
}

/** "pos" / "neg" / "" for colouring a signed amount. */
export function signClass(value) {
  const n = Number(value);
  return !Number.isFinite(n) || n === 0 ? "" : n > 0 ? "pos" : "neg";
}

/** A timestamp in UTC, to the second: trading times are compared across venues in UTC. */
export function time(value) {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function seconds(value) {
  return Math.floor(new Date(value).getTime() / 1000);
}
