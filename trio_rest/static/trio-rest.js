/**
 * trio-rest.js: the JavaScript client of trio-rest, an ES module with no dependencies.
 *
 * It speaks the JSON subprotocol (`trio-rest.json`) of docs/protocol.md over one WebSocket;
 * MessagePack is not supported here. It runs in browsers and in Node >= 18: it uses
 * `globalThis.WebSocket` (Node 22, or Node 20 run with `--experimental-websocket`), or the
 * constructor passed as `options.WebSocket` (for example the `ws` package's).
 *
 *     import { connect } from "/trio-rest.js";
 *     const client = await connect("ws://127.0.0.1:8080/", { reconnect: true });
 *     const reply = await client.get("/user/1");          // {type, id, status, data, ...}
 *     const sub = await client.subscribe("/user/list");
 *     for await (const note of sub) console.log(note.event_name, note.data);
 *
 * @module trio-rest
 */

/** Something went wrong in the client (base class). */
export class TrioRestError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** The connection closed (or could not open) while a reply was awaited. */
export class ConnectionClosedError extends TrioRestError {}

/** No reply came within the request's `timeout`; a `cancel` was sent for it. */
export class RequestTimeoutError extends TrioRestError {}

/** The server refused the token sent in the `auth` message; `response` holds its reply. */
export class AuthenticationError extends TrioRestError {
  constructor(response) {
    super(`authentication refused: ${response.status} ${response.detail ?? ""}`.trim());
    this.response = response;
  }
}

/** A `SUBSCRIBE` was answered with an error; `response` holds that reply. */
export class SubscriptionError extends TrioRestError {
  constructor(response) {
    super(`subscription refused: ${response.status} ${response.detail ?? ""}`.trim());
    this.response = response;
  }
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Times a write with an idempotency key is sent, at most, when connections drop before its reply. */
const WRITE_ATTEMPTS = 3;
/** Times a subscription is sent again after a reconnection while the server answers 503. */
const RESUBSCRIBE_ATTEMPTS = 8;

/** A final notification's error body saying the server closes (503 `closing`). */
function isClosing(data) {
  return data !== null && typeof data === "object" && data.code === "closing";
}

/** A fresh idempotency key: 32 hex digits (from Math.random where Web Crypto is missing, Node 18). */
function randomKey() {
  const bytes = new Uint8Array(16);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A live subscription: an async iterator of notification envelopes.
 *
 * With `reconnect`, it outlives a dropped connection: it is sent again with `args.since`,
 * the last `{epoch, offset}` seen per topic, and the server first sends one `"recovery"`
 * notification per topic (its `data.recovered` says whether nothing was lost).
 */
export class Subscription {
  constructor(client, id, url, args, data, response) {
    this._client = client;
    /** The subscription's request id (its notifications carry it). */
    this.id = id;
    this.url = url;
    this.args = args;
    this.data = data;
    /** The reply to the `SUBSCRIBE` (status 200). */
    this.response = response;
    /** The last `{epoch, offset}` seen per topic: what a resubscription recovers from. */
    this.positions = {};
    this._queue = [];
    this._waiters = [];
    this._error = null;
    this._done = false;
  }

  _push(note) {
    if (note.final && this._client.reconnect && !this._client._closed && isClosing(note.data)) {
      return; // the server is going away: the subscription is renewed after the reconnection
    }
    if (note.offset != null && note.topic != null) {
      const known = note.topic in this.positions;
      const recovering = note.event_name === "recovery" && note.data !== null && typeof note.data === "object";
      // A recovery notice gives the topic's position now: where a subscriber that knew none
      // starts, or one that cannot recover starts again. One that recovers moves on with the
      // missed notifications themselves, so that a drop meanwhile loses none.
      if (!(recovering && known && note.data.recovered === true)) {
        this.positions[note.topic] = { epoch: note.epoch, offset: note.offset };
      }
    }
    const waiter = this._waiters.shift();
    if (waiter) waiter.resolve({ value: note, done: false });
    else this._queue.push(note);
    if (note.final) this._finish(null);
  }

  _finish(error) {
    if (this._done) return;
    this._done = true;
    this._error = error;
    this._client._subscriptions.delete(this.id);
    for (const waiter of this._waiters.splice(0)) {
      if (error) waiter.reject(error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** @returns {Promise<IteratorResult<object>>} the next notification. */
  next() {
    if (this._queue.length) return Promise.resolve({ value: this._queue.shift(), done: false });
    if (this._done) {
      return this._error ? Promise.reject(this._error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }));
  }

  /** Leaving a `for await` loop cancels the subscription. */
  async return() {
    await this.cancel();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /**
   * Send the protocol `cancel` for this subscription and end the iteration.
   * @returns {Promise<void>}
   */
  async cancel() {
    if (this._done) return;
    this._finish(null);
    await this._client._cancel(this.id);
  }
}

/** A client on one WebSocket; made by `connect`. */
export class Client {
  constructor(url, options = {}) {
    this.url = url;
    this.token = options.token ?? null;
    /** Seconds a request waits for its reply by default. */
    this.timeout = options.timeout ?? 65;
    this.reconnect = options.reconnect ?? false;
    this.maxBackoff = options.maxBackoff ?? 10;
    this.onToken = options.onToken ?? null;
    this.tokenIn = options.tokenIn ?? "message";
    /** Called with each notification that belongs to no subscription of this client. */
    this.onNotification = options.onNotification ?? null;
    /** Called with "open", "reconnecting" or "closed" as the connection's state changes. */
    this.onState = options.onState ?? null;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== "function") {
      throw new TrioRestError(
        "no WebSocket constructor: pass options.WebSocket (Node 20: run with --experimental-websocket)",
      );
    }
    this._nextId = 1;
    this._pending = new Map(); // id -> {resolve, reject, timer}
    this._subscriptions = new Map(); // id -> Subscription
    this._socket = null;
    this._closed = false;
    this._opening = null;
  }

  _socketUrl() {
    if (!this.token || this.tokenIn !== "query") return this.url;
    const url = new URL(this.url);
    url.searchParams.set("token", this.token);
    return url.toString();
  }

  /** Open the socket; resolves once it is open and, with a token, the `auth` was accepted. */
  async _open() {
    await this._openSocket();
    if (this.token && this.tokenIn === "message") {
      const reply = await this._exchange({ type: "auth", token: this.token }, `auth-${this._nextId++}`);
      if (reply.status >= 400) {
        const ws = this._socket;
        this._socket = null;
        ws.close(1000);
        throw new AuthenticationError(reply);
      }
    }
    this._state("open");
  }

  _state(state) {
    if (!this.onState) return;
    try {
      this.onState(state);
    } catch {
      // a hook that throws must not break the connection
    }
  }

  _openSocket() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new this._WebSocket(this._socketUrl(), "trio-rest.json");
      } catch (error) {
        reject(new ConnectionClosedError(`cannot open ${this.url}: ${error.message}`));
        return;
      }
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this._socket = ws;
        resolve();
      };
      ws.onmessage = (event) => this._receive(event.data);
      ws.onclose = () => {
        if (!opened) {
          reject(new ConnectionClosedError(`cannot open ${this.url}`));
          return;
        }
        if (this._socket === ws) this._dropped();
      };
      ws.onerror = () => {}; // a close event follows
    });
  }

  _receive(text) {
    if (typeof text !== "string") return; // binary frames are MessagePack: not spoken here
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "notification") {
      const sub = message.id != null ? this._subscriptions.get(message.id) : undefined;
      if (sub) sub._push(message);
      else if (this.onNotification) this.onNotification(message);
      return;
    }
    const waiter = this._pending.get(message.id);
    if (waiter && (message.type === "response" || message.type === "pong")) {
      this._pending.delete(message.id);
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    }
  }

  _dropped() {
    this._socket = null;
    const error = new ConnectionClosedError("the connection closed");
    for (const [id, waiter] of this._pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this._pending.delete(id);
    }
    if (this._closed || !this.reconnect) {
      this._state("closed");
      for (const sub of [...this._subscriptions.values()]) sub._finish(this._closed ? null : error);
      return;
    }
    this._state("reconnecting");
    this._opening = this._reopen();
  }

  async _reopen() {
    for (let attempt = 1; !this._closed; attempt++) {
      // Exponential backoff with jitter, so that clients of a restarted server spread out.
      const delay = Math.min(this.maxBackoff, 0.1 * 2 ** Math.min(attempt - 1, 30)) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay * 1000));
      if (this._closed) return;
      try {
        if (this.onToken) this.token = await this.onToken();
        await this._open();
      } catch (error) {
        if (error instanceof AuthenticationError) {
          // The token (even a refreshed one) is refused: the client stops for good.
          this._closed = true;
          this._state("closed");
          for (const sub of [...this._subscriptions.values()]) sub._finish(error);
          return;
        }
        continue;
      }
      this._opening = null;
      for (const sub of [...this._subscriptions.values()]) this._resubscribe(sub);
      return;
    }
  }

  /**
   * Send a subscription again after a reconnection, from the positions it reached. A 503 (the
   * server, or its broker, is not ready yet) is retried with backoff, a few times.
   */
  async _resubscribe(sub) {
    for (let attempt = 1; !sub._done; attempt++) {
      const args = { ...sub.args, since: { ...sub.positions } };
      let reply;
      try {
        reply = await this._exchange({ method: "SUBSCRIBE", url: sub.url, args, data: sub.data }, sub.id);
      } catch (error) {
        if (!(error instanceof ConnectionClosedError)) sub._finish(error);
        return; // the connection dropped again: the next reconnection resubscribes
      }
      if (reply.status === 200) {
        sub.response = reply;
        return;
      }
      if (reply.status !== 503 || attempt >= RESUBSCRIBE_ATTEMPTS) {
        sub._finish(new SubscriptionError(reply));
        return;
      }
      const delay = Math.min(this.maxBackoff, 0.2 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay * 1000));
    }
  }

  async _ready() {
    if (this._socket) return this._socket;
    if (this._opening) await this._opening;
    if (!this._socket) throw new ConnectionClosedError("the connection is closed");
    return this._socket;
  }

  /** Send `envelope` under `id` and resolve with its reply; on `timeout` cancel and reject. */
  async _exchange(envelope, id, timeout = this.timeout) {
    const ws = await this._ready();
    if (this._socket !== ws) throw new ConnectionClosedError("the connection closed");
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        this._cancel(id).catch(() => {});
        reject(new RequestTimeoutError(`no reply to ${envelope.method} ${envelope.url} in ${timeout}s`));
      }, timeout * 1000);
      this._pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...envelope, id }));
    });
  }

  /** Send a `cancel` for `id` (its request's reply, a 499, is then ignored). */
  async _cancel(id) {
    const ws = this._socket;
    if (ws) ws.send(JSON.stringify({ type: "cancel", id }));
  }

  /**
   * Send a request and wait for its reply.
   * @param {string} method GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS.
   * @param {string} url an absolute path, with an optional query string.
   * @param {object} [options]
   * @param {*} [options.data] the body.
   * @param {object} [options.args] query-like parameters.
   * @param {string} [options.eventName] echoed on the reply as `event_name`.
   * @param {number} [options.timeout] seconds to wait for the reply (the client's default if
   *   omitted); past it a `cancel` is sent and the promise rejects with `RequestTimeoutError`.
   * @param {string} [options.idempotencyKey] sent as `idempotency_key`: the server runs a write
   *   with the same key once. A client that reconnects gives every write one by itself, and
   *   sends a keyed write again (up to 3 times) when the connection drops before its reply.
   * @returns {Promise<object>} the response envelope: `{type, id, status, data, code, detail, errors}`.
   */
  request(method, url, options = {}) {
    method = method.toUpperCase();
    const envelope = { method, url };
    if (options.args !== undefined) envelope.args = options.args;
    if (options.data !== undefined) envelope.data = options.data;
    if (options.eventName !== undefined) envelope.event_name = options.eventName;
    let key = options.idempotencyKey;
    if (key === undefined && this.reconnect && WRITES.has(method)) key = randomKey();
    if (key !== undefined) envelope.idempotency_key = key;
    const timeout = options.timeout ?? this.timeout;
    if (key === undefined || !this.reconnect) return this._exchange(envelope, this._nextId++, timeout);
    return this._resend(envelope, timeout);
  }

  /** A keyed write, sent again on the next connection when one drops before its reply. */
  async _resend(envelope, timeout) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this._exchange(envelope, this._nextId++, timeout);
      } catch (error) {
        if (!(error instanceof ConnectionClosedError) || attempt >= WRITE_ATTEMPTS || this._closed) throw error;
      }
    }
  }

  /** `request("GET", url, options)` */
  get(url, options = {}) {
    return this.request("GET", url, options);
  }
  /** `request("POST", url, {...options, data})` */
  post(url, data, options = {}) {
    return this.request("POST", url, { ...options, data });
  }
  /** `request("PUT", url, {...options, data})` */
  put(url, data, options = {}) {
    return this.request("PUT", url, { ...options, data });
  }
  /** `request("PATCH", url, {...options, data})` */
  patch(url, data, options = {}) {
    return this.request("PATCH", url, { ...options, data });
  }
  /** `request("DELETE", url, options)` */
  delete(url, options = {}) {
    return this.request("DELETE", url, options);
  }

  /**
   * `SUBSCRIBE` to `url`.
   * @param {string} url
   * @param {object} [options] `{args, data, timeout}`.
   * @returns {Promise<Subscription>} once the server answered 200; rejects with
   *   `SubscriptionError` (its `response` is the reply) otherwise.
   */
  async subscribe(url, options = {}) {
    const id = this._nextId++;
    const args = { ...(options.args ?? {}) };
    const sub = new Subscription(this, id, url, args, options.data, null);
    // Registered first: a notification may follow the reply in the same read.
    this._subscriptions.set(id, sub);
    const envelope = { method: "SUBSCRIBE", url, args };
    if (this.reconnect) envelope.args = { ...args, since: {} };
    if (options.data !== undefined) envelope.data = options.data;
    let reply;
    try {
      reply = await this._exchange(envelope, id, options.timeout ?? this.timeout);
    } catch (error) {
      this._subscriptions.delete(id);
      throw error;
    }
    if (reply.status !== 200) {
      this._subscriptions.delete(id);
      throw new SubscriptionError(reply);
    }
    sub.response = reply;
    return sub;
  }

  /**
   * Send a `ping`; resolves with the round trip in milliseconds.
   * @returns {Promise<number>}
   */
  async ping(options = {}) {
    const started = Date.now();
    await this._exchange({ type: "ping" }, `ping-${this._nextId++}`, options.timeout ?? this.timeout);
    return Date.now() - started;
  }

  /** Close the connection for good: what waits rejects, subscriptions end. */
  close() {
    this._closed = true;
    const ws = this._socket;
    this._dropped();
    if (ws) ws.close(1000);
  }
}

/**
 * Open a connection.
 * @param {string} url `ws://host:port/` or `wss://...`.
 * @param {object} [options]
 * @param {string} [options.token] a JWT, sent as an `auth` message first (or as `?token=`
 *   when `options.tokenIn` is `"query"`).
 * @param {number} [options.timeout=65] seconds a request waits for its reply by default.
 * @param {boolean} [options.reconnect=false] reopen a dropped connection with exponential
 *   backoff, and resubscribe with `args.since` (recovery).
 * @param {number} [options.maxBackoff=10] the longest wait between two attempts, in seconds.
 * @param {Function} [options.WebSocket] the WebSocket constructor (default `globalThis.WebSocket`).
 * @param {string} [options.tokenIn="message"] `"message"` (an `auth` message) or `"query"`.
 * @param {Function} [options.onNotification] receives notifications tied to no subscription.
 * @param {Function} [options.onToken] called (and awaited) before each reconnection; its result
 *   is the token sent on the new connection (to refresh an expired one).
 * @param {Function} [options.onState] called with `"open"` (and after each reconnection),
 *   `"reconnecting"` or `"closed"`.
 * @returns {Promise<Client>}
 */
export async function connect(url, options = {}) {
  const client = new Client(url, options);
  await client._open();
  return client;
}
