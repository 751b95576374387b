// The trader's bearer token: taken from the URL fragment (`#token=...`, never sent to the server) or
// pasted, and kept in this tab's sessionStorage only. The fragment is removed from the address bar at
// once so the token does not linger in history or get copied with the URL.

const KEY = "tradeflow.token";

export function readToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const given = fragment.get("token");
  if (given) {
    storeToken(given);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? `#${rest}` : ""));
  }
  return sessionStorage.getItem(KEY);
}

export function storeToken(token) {
  sessionStorage.setItem(KEY, token.trim());
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

/** The token's claims, decoded for display only (the API verifies the signature), or null. */
export function claimsOf(token) {
  const parts = (token || "").split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "="));
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/** Seconds until the token expires (negative once expired), or null when it carries no `exp`. */
export function secondsLeft(token) {
  const claims = claimsOf(token);
  return claims && typeof claims.exp === "number" ? claims.exp - Date.now() / 1000 : null;
}
