// The WebSocket client: connects with the token, subscribes, keeps the connection alive, detects lost
// updates, and reconnects with exponential backoff and jitter (then subscribes again).
//
// Server frames (see the README's WebSocket API): `subscribed`, `pong`, `error`, and
// `update` {channel, data, ts, seq}, where seq counts per connection from 1: a gap means updates were
// lost, and the owner refetches over REST (`onGap`). A new connection starts a new sequence, and what
// happened while disconnected was missed too, so every (re)connection is reported as a gap as well.

export const TOPICS = ["orders", "fills", "positions", "signals", "controls", "alerts"];
const PING_EVERY_MS = 4.5 * 60 * 1000; // API Gateway closes idle connections after 10 minutes
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export class LiveClient {
  /**
   * @param {string} url the WebSocket API's URL
   * @param {() => string|null} token returns the current token (null: stop, the owner handles it)
   * @param {object} handlers onUpdate(channel, data, frame), onState(state, detail), onGap(reason),
   *   onServerError(frame)
   */
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.channels = [...TOPICS];
    this.socket = null;
    this.attempt = 0;
    this.lastSeq = 0;
    this.timer = null;
    this.pinger = null;
    this.stopped = false;
    this.counter = 0;
    this.awaitingAck = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.socket) this.socket.close(1000, "client stopped");
    this.socket = null;
  }

  /** Replace the quote channels (`quotes:SYMBOL`) kept in addition to the topics. */
  setQuotes(symbols) {
    const wanted = [...TOPICS, ...[...new Set(symbols)].sort().map((s) => `quotes:${s}`)];
    const added = wanted.filter((c) => !this.channels.includes(c));
    const removed = this.channels.filter((c) => !wanted.includes(c));
    this.channels = wanted;
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      if (added.length) this.send({ action: "subscribe", channels: added, id: this.nextId("sub") });
      if (removed.length) this.send({ action: "unsubscribe", channels: removed, id: this.nextId("unsub") });
    }
  }

  nextId(prefix) {
    this.counter += 1;
    return `${prefix}-${this.counter}`;
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  connect() {
    const token = this.token();
    if (!token || this.stopped) return;
    this.handlers.onState(this.attempt ? "reconnecting" : "connecting", this.attempt ? `attempt ${this.attempt + 1}` : "");
    const separator = this.url.includes("?") ? "&" : "?";
    let socket;
    try {
      socket = new WebSocket(`${this.url}${separator}token=${encodeURIComponent(token)}`);
    } catch (error) {
      this.handlers.onState("error", `invalid WebSocket URL ${this.url}: ${error.message}`);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      this.lastSeq = 0;
      this.awaitingAck = true;
      this.send({ action: "subscribe", channels: this.channels, id: this.nextId("sub") });
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ action: "ping", id: this.nextId("ping") }), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return; // an older socket, already replaced
      clearInterval(this.pinger);
      this.socket = null;
      if (this.stopped) return;
      const why = opened ? `connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""})` : "could not connect";
      this.schedule(why);
    });
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case "subscribed":
        if (this.awaitingAck) {
          // the first ack of this connection: live from here on; what came before is refetched
          this.awaitingAck = false;
          this.attempt = 0;
          this.handlers.onGap("connected");
        }
        this.handlers.onState("live", (frame.subscriptions || frame.channels || []).join(", "));
        break;
      case "update":
        if (typeof frame.seq === "number") {
          if (this.lastSeq && frame.seq !== this.lastSeq + 1) this.handlers.onGap(`missed updates (seq ${this.lastSeq} -> ${frame.seq})`);
          this.lastSeq = frame.seq;
        }
        this.handlers.onUpdate(frame.channel, frame.data || {}, frame);
        break;
      case "error":
        this.handlers.onServerError(frame);
        break;
      default: // pong, unsubscribed: nothing to do
        break;
    }
  }

  /** Reconnect after an exponentially growing delay with jitter, so clients do not return in step. */
  schedule(why) {
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    this.handlers.onState("reconnecting", `${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
