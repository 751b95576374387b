// Small DOM helpers. Every value from the API is set as text (never as HTML), so nothing a record
// contains can run in the page.

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** An element: el("td", {class: "num", dataset: {id: "x"}}, "text", child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const banners = new Map();

/** Show (or replace) the banner `key`: level is "error", "warning" or "info". */
export function banner(key, level, message) {
  const host = $("#banners");
  const node = el("div", { class: "banner", role: level === "error" ? "alert" : "status", dataset: { level, key } },
    el("span", { class: "msg", text: message }),
    el("button", { type: "button", "aria-label": "dismiss", text: "×" }));
  node.querySelector("button").addEventListener("click", () => clearBanner(key));
  const previous = banners.get(key);
  if (previous) previous.replaceWith(node);
  else host.append(node);
  banners.set(key, node);
}

export function clearBanner(key) {
  const node = banners.get(key);
  if (node) node.remove();
  banners.delete(key);
}

/** Show the empty-state line of a list when it has no rows. */
export function markEmpty(name, empty) {
  const line = document.querySelector(`[data-empty-for="${name}"]`);
  if (line) line.hidden = !empty;
}
