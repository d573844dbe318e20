// The client's I/O: one websocket at a time, reconnected according to the
// close-code policy (policy.js), with the seq bookkeeping (seqs.js), the inbox
// (inbox.js), presence (presence.js) and the token's life (token.js) applied to
// the frames it moves.
// The wire protocol is docs/websocket-protocol.md.

import { backoffDelay, restartDelay } from "./backoff.js";
import { InboxState } from "./inbox.js";
import { CLOSE, decideAfterClose } from "./policy.js";
import { Presence, PresenceState } from "./presence.js";
import { SeqBook } from "./seqs.js";
import { refreshDelay, tokenExpiry } from "./token.js";

/**
 * @typedef {"connecting" | "open" | "reconnecting" | "unauthorized" | "closed"} ConnectionState
 */

/**
 * @typedef {object} StateChange
 * @property {ConnectionState} state
 * @property {string} reason what happened, in words
 * @property {number} [code] the close code that caused it, if any
 * @property {number} [retryInMs] for `reconnecting`: when the next attempt starts
 */

/**
 * One event of a channel. `data` is the event's payload; its type depends on
 * `type` (see the events catalogue) and is left to the caller to narrow.
 *
 * @template [T=unknown]
 * @typedef {object} ChannelEvent
 * @property {string} channel
 * @property {number} seq strictly increasing per channel (it may skip numbers)
 * @property {string} type e.g. `post.created`
 * @property {T} data
 * @property {string} ts RFC 3339, when the change happened
 */

/**
 * @typedef {import("./seqs.js").Gap} Gap
 */

/**
 * An `error` frame the gateway sent about an op.
 *
 * @typedef {object} GatewayError
 * @property {string} code `bad_request`, `unknown_channel`, `forbidden`, `rate_limited`, `too_large`, `unavailable`
 * @property {string} message
 * @property {string} [channel]
 */

/**
 * A `presence` frame (SPEC §11), as generated from the gateway's contract.
 *
 * @typedef {import("./generated/events.js").PresenceFrame} PresenceFrame
 */

/** @typedef {import("./generated/events.js").PresencePerson} PresencePerson */

/**
 * @typedef {object} SubscribeOptions
 * @property {number} [since] on the first subscription, replay the history after this seq (0: from the beginning)
 * @property {(gap: Gap) => void} [onGap] history did not reach back: refetch the channel over HTTP
 * @property {(error: GatewayError) => void} [onError] the subscription was refused (`forbidden`, `unknown_channel`) or dropped by the gateway; it is over
 */

/**
 * @typedef {object} SubscribeResult
 * @property {string} channel
 * @property {number} [seq] the channel's latest seq when the gateway answered
 * @property {boolean} [recovered]
 * @property {GatewayError} [error] set when the subscription was refused
 */

/**
 * @typedef {object} Subscription
 * @property {string} channel
 * @property {Promise<SubscribeResult>} ready settles at the first answer (never rejects)
 * @property {() => void} unsubscribe
 */

/**
 * The subset of the WHATWG WebSocket this client uses; the browser's
 * `WebSocket`, Node 22's global one and the `ws` package all fit.
 *
 * @typedef {object} WebSocketLike
 * @property {number} readyState
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: any) => void) | null} onopen
 * @property {((event: any) => void) | null} onmessage
 * @property {((event: any) => void) | null} onclose
 * @property {((event: any) => void) | null} onerror
 */

/**
 * @typedef {new (url: string) => WebSocketLike} WebSocketConstructor
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} url the gateway's websocket URL, e.g. `wss://live.example.com/ws`
 * @property {string} [token] a JWT; without it and without `getToken` the client is a guest
 * @property {() => Promise<string | null | undefined>} [getToken] returns a valid token
 *   (called to connect, to refresh before expiry, after 4401, and once after a refused handshake);
 *   `null` means signed out: the client stops in `unauthorized`
 * @property {WebSocketConstructor} [WebSocket] defaults to `globalThis.WebSocket`
 * @property {{baseMs?: number, capMs?: number}} [backoff] reconnect delays (500 ms doubling up to 30 s, full jitter)
 * @property {number} [restartWindowMs] reconnects after 1012/1001 spread over this window (default 3000)
 * @property {number} [refreshMarginMs] refresh the token this long before `exp` at most (default 60 000; a quarter of a shorter life)
 * @property {number} [pingIntervalMs] send `ping` after this long without a frame (default 25 000)
 * @property {number} [pongTimeoutMs] give up on a connection silent this long after a ping (default 10 000)
 * @property {number} [connectTimeoutMs] give up on a handshake without `hello` after this long (default 15 000)
 * @property {number} [maxUnexplainedFailures] failures of unknown cause before a new token is asked for; twice as many end in `unauthorized` (default 3)
 * @property {boolean | typeof fetch} [checkToken] tell a refused token from a network failure by an HTTP GET of the URL (default: the global `fetch` when there is one)
 * @property {boolean} [visibility] follow `document.visibilityState` with the `mode` op (default true when there is a document)
 * @property {boolean} [inbox] load the signed-in user's inbox history (default true)
 * @property {() => number} [random] source of jitter in [0, 1) (tests)
 * @property {(error: unknown) => void} [onError] errors thrown by handlers and errors not tied to a subscription
 */

/**
 * @typedef {object} Hello
 * @property {string | null} user_id
 * @property {string} role
 * @property {string[]} channels
 * @property {number} unread
 */

const PRIORITY = (/** @type {string} */ channel) =>
  channel === "reviews" || channel.startsWith("user:");

/** @param {string} channel */
function canonical(channel) {
  return channel.startsWith("user:") ? channel.toLowerCase() : channel;
}

export class CommunityClient {
  /** @param {ClientOptions} options */
  constructor(options) {
    if (!options || typeof options.url !== "string") throw new TypeError("options.url is required");
    /** @private */
    this._options = options;
    /** @type {WebSocketConstructor | undefined} @private */
    this._WebSocket = options.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    /** @private */
    this._random = options.random ?? Math.random;
    /** @type {string | null} @private */
    this._token = options.token ?? null;
    /** @type {ConnectionState} @private */
    this._state = "closed";
    /** @private */
    this._reason = "not connected yet";
    /** @type {Set<(change: StateChange) => void>} @private */
    this._stateListeners = new Set();
    /** @type {Set<() => void>} @private */
    this._presenceListeners = new Set();
    /** @private */
    this._presenceState = new PresenceState();
    /** @private */
    this._book = new SeqBook();
    /** @type {Map<string, Set<{handler: (event: ChannelEvent<any>) => void, options: SubscribeOptions, settle: (result: SubscribeResult) => void, settled: boolean}>>} @private */
    this._handlers = new Map();
    /** @type {Map<number, {op: string, channel?: string, resolve: (frame: any) => void}>} @private */
    this._pending = new Map();
    /** @private */
    this._nextId = 1;
    /** @type {WebSocketLike | null} @private */
    this._ws = null;
    /** @private */
    this._opened = false;
    /** @private */
    this._helloed = false;
    /** @type {Hello | null} @private */
    this._hello = null;
    /** @private */
    this._attempt = 0;
    /** @private */
    this._askedAfterRefusal = false;
    /** @private */
    this._unexplained = 0;
    /** @type {number | undefined} @private */
    this._httpStatus = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} @private */
    this._retryTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} @private */
    this._refreshTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} @private */
    this._connectTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} @private */
    this._pingTimer = undefined;
    /** @private */
    this._lastFrameAt = 0;
    /** @type {number | null} @private */
    this._pingSentAt = null;
    /** @private */
    this._generation = 0;
    /** @private */
    this._inboxState = new InboxState();
    /** @type {Set<() => void>} @private */
    this._inboxListeners = new Set();
    /** @type {number | null} a read position not yet confirmed by the gateway @private */
    this._pendingRead = null;
    /** @type {string | null} @private */
    this._inboxChannel = null;
    /** @private */
    this._mode = /** @type {"foreground" | "background"} */ ("foreground");
    /** @private */
    this._onVisibility = () => this._followVisibility();
    this.inbox = new Inbox({
      state: () => this._inboxState,
      listen: (listener) => {
        this._inboxListeners.add(listener);
        return () => this._inboxListeners.delete(listener);
      },
      markRead: (seq) => this._markRead(seq),
    });
    this.presence = new Presence({
      state: () => this._presenceState,
      listen: (listener) => this._listenPresence(listener),
    });
  }

  // ------------------------------------------------------------------ state

  /** @returns {ConnectionState} */
  get state() {
    return this._state;
  }

  /** Why the client is in its current state, in words. */
  get reason() {
    return this._reason;
  }

  /** The signed-in user's id (from `hello`), or null for a guest or before `hello`. */
  get userId() {
    return this._hello?.user_id ?? null;
  }

  /** The role from `hello` (`guest`, `student`, `instructor`, `admin`), or null before it. */
  get role() {
    return this._hello?.role ?? null;
  }

  /**
   * Call `listener` on every state change; returns a function that stops it.
   *
   * @param {(change: StateChange) => void} listener
   * @returns {() => void}
   */
  onState(listener) {
    this._stateListeners.add(listener);
    return () => this._stateListeners.delete(listener);
  }

  /**
   * @param {ConnectionState} state
   * @param {string} reason
   * @param {{code?: number, retryInMs?: number}} [extra]
   * @private
   */
  _setState(state, reason, extra = {}) {
    this._state = state;
    this._reason = reason;
    /** @type {StateChange} */
    const change = { state, reason, ...extra };
    for (const listener of [...this._stateListeners]) this._call(listener, change);
  }

  /**
   * @template A
   * @param {(arg: A) => void} fn
   * @param {A} arg
   * @private
   */
  _call(fn, arg) {
    try {
      fn(arg);
    } catch (error) {
      this._report(error);
    }
  }

  /**
   * @param {unknown} error
   * @private
   */
  _report(error) {
    if (this._options.onError) this._options.onError(error);
    else console.error("@community-live/client:", error);
  }

  // ------------------------------------------------------------------ connecting

  /** Connect (or reconnect after `unauthorized` or `close()`). Idempotent while connected. */
  connect() {
    if (this._state === "connecting" || this._state === "open" || this._state === "reconnecting") {
      return;
    }
    // After `unauthorized` the token in hand was refused: start with a new one.
    const freshToken = this._state === "unauthorized" && Boolean(this._options.getToken);
    this._attempt = 0;
    this._askedAfterRefusal = false;
    this._unexplained = 0;
    if (this._options.visibility !== false && typeof document !== "undefined") {
      document.addEventListener("visibilitychange", this._onVisibility);
      this._mode = document.visibilityState === "hidden" ? "background" : "foreground";
    }
    this._setState("connecting", "connecting");
    void this._open(freshToken);
  }

  /**
   * Close for good (until `connect()`): no reconnect, state `closed`.
   * Subscriptions and seqs are kept, so `connect()` resumes where it stopped.
   */
  close() {
    this._stop("closed", "closed by the application");
  }

  /**
   * @param {ConnectionState} state
   * @param {string} reason
   * @param {number} [code]
   * @private
   */
  _stop(state, reason, code) {
    this._generation += 1;
    this._clearTimers();
    if (typeof document !== "undefined") {
      document.removeEventListener("visibilitychange", this._onVisibility);
    }
    const ws = this._ws;
    this._detach();
    if (ws) {
      try {
        ws.close(1000, "");
      } catch {
        // already closed
      }
    }
    this._setState(state, reason, code === undefined ? {} : { code });
  }

  /** @private */
  _clearTimers() {
    clearTimeout(this._retryTimer);
    clearTimeout(this._refreshTimer);
    clearTimeout(this._connectTimer);
    clearInterval(this._pingTimer);
    this._retryTimer = this._refreshTimer = this._connectTimer = this._pingTimer = undefined;
  }

  /** Drop the current socket's handlers and forget what was in flight on it. @private */
  _detach() {
    const ws = this._ws;
    // No-ops rather than null: the `ws` package throws an `error` event that
    // has no listener (closing a socket still connecting emits one), which
    // would crash a Node process.
    const ignore = () => {};
    if (ws) ws.onopen = ws.onmessage = ws.onclose = ws.onerror = ignore;
    this._ws = null;
    this._book.disconnected();
    this._presenceState.disconnected();
    // A `visibility` in flight gets no answer now: tell its caller.
    const lost = { op: "error", code: "unavailable", message: "the connection closed before the answer" };
    for (const entry of this._pending.values()) if (entry.op === "visibility") entry.resolve(lost);
    this._pending.clear();
    this._helloed = false;
    clearInterval(this._pingTimer);
    clearTimeout(this._refreshTimer);
    clearTimeout(this._connectTimer);
  }

  /**
   * Open a socket (after asking the provider for a token when needed).
   *
   * @param {boolean} freshToken
   * @private
   */
  async _open(freshToken) {
    const generation = this._generation;
    const provider = this._options.getToken;
    if (provider && (freshToken || this._token === null)) {
      let token;
      try {
        token = await provider();
      } catch (error) {
        if (generation !== this._generation) return;
        this._report(error);
        this._retry("backoff", `the token provider failed (${String(error)}); retrying`);
        return;
      }
      if (generation !== this._generation) return;
      if (!token) {
        this._stop("unauthorized", "the token provider returned no token (signed out)");
        return;
      }
      this._token = token;
    }
    const WS = this._WebSocket;
    if (!WS) {
      this._stop("closed", "no WebSocket implementation: pass options.WebSocket");
      return;
    }
    let ws;
    try {
      ws = new WS(this._urlWithToken());
    } catch (error) {
      this._stop("closed", `cannot open a websocket: ${String(error)}`);
      return;
    }
    this._ws = ws;
    this._opened = false;
    this._httpStatus = undefined;
    ws.onopen = () => {
      this._opened = true;
    };
    ws.onerror = (/** @type {any} */ event) => {
      // The `ws` package says why a handshake failed; browsers never do.
      const text = String(event?.message ?? event?.error?.message ?? "");
      const match = /Unexpected server response: (\d{3})/.exec(text);
      if (match) this._httpStatus = Number(match[1]);
    };
    ws.onclose = (/** @type {any} */ event) => {
      void this._closed(ws, Number(event?.code ?? CLOSE.ABNORMAL), String(event?.reason ?? ""));
    };
    ws.onmessage = (/** @type {any} */ event) => this._onMessage(event.data);
    const timeout = this._options.connectTimeoutMs ?? 15_000;
    this._connectTimer = setTimeout(() => {
      if (this._ws === ws && !this._helloed) this._abandon(ws, "no hello from the gateway in time");
    }, timeout);
  }

  /** @private */
  _urlWithToken() {
    if (!this._token) return this._options.url;
    const url = new URL(this._options.url);
    url.searchParams.set("token", this._token);
    return url.toString();
  }

  /**
   * Give up on a socket that stopped answering, as if it had closed (1006).
   *
   * @param {WebSocketLike} ws
   * @param {string} why
   * @private
   */
  _abandon(ws, why) {
    try {
      ws.close();
    } catch {
      // already closing
    }
    void this._closed(ws, CLOSE.ABNORMAL, why);
  }

  /**
   * @param {WebSocketLike} ws
   * @param {number} code
   * @param {string} reason
   * @private
   */
  async _closed(ws, code, reason) {
    if (this._ws !== ws) return; // an older socket, already dealt with
    const opened = this._opened;
    const httpStatus = this._httpStatus;
    this._detach();
    const generation = this._generation;
    const signedIn = this._token !== null;
    /** @type {import("./policy.js").RefusalCause | undefined} */
    let refusal;
    if (!opened && signedIn) {
      refusal = httpStatus !== undefined ? (httpStatus === 401 ? "unauthorized" : "other") : await this._checkToken();
      if (generation !== this._generation) return;
      const online = typeof navigator === "undefined" || navigator.onLine !== false;
      if (refusal === "unknown" && online) this._unexplained += 1;
    }
    const decision = decideAfterClose({
      opened,
      code,
      refusal,
      signedIn,
      hasProvider: Boolean(this._options.getToken),
      askedAfterRefusal: this._askedAfterRefusal,
      unexplained: this._unexplained,
      maxUnexplained: this._options.maxUnexplainedFailures ?? 3,
    });
    if (decision.action === "unauthorized") {
      this._stop("unauthorized", decision.reason, code);
      return;
    }
    if (decision.freshToken && !opened) this._askedAfterRefusal = true;
    const why = reason ? `${decision.reason} (${reason})` : decision.reason;
    this._retry(decision.delay, why, code, decision.freshToken);
  }

  /**
   * Tell a refused token from an unreachable gateway after a handshake that
   * failed without saying why (browsers). A plain HTTP GET of the websocket
   * URL with the same token: the gateway checks the token before it looks at
   * the upgrade headers, so it answers 401 to a refused token and 426 to a
   * good one. Across origins that answer is unreadable (the gateway sends no
   * CORS headers) and the fetch fails as a network error would; a second,
   * `no-cors` fetch then tells a reachable gateway (an opaque answer: the
   * handshake was refused for a reason we cannot read, `unknown`) from an
   * unreachable one (a network failure, `other`).
   *
   * @returns {Promise<import("./policy.js").RefusalCause>}
   * @private
   */
  async _checkToken() {
    const option = this._options.checkToken;
    const doFetch = typeof option === "function" ? option : option === false ? null : globalThis.fetch;
    if (!doFetch) return "unknown";
    const url = new URL(this._urlWithToken());
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    try {
      const response = await doFetch(url.toString(), { signal: AbortSignal.timeout(5000), cache: "no-store" });
      return response.status === 401 ? "unauthorized" : "other";
    } catch {
      // Unreadable or unreachable: which one?
    }
    try {
      await doFetch(url.toString(), { signal: AbortSignal.timeout(5000), cache: "no-store", mode: "no-cors" });
      return "unknown";
    } catch {
      return "other";
    }
  }

  /**
   * @param {"backoff" | "restart" | "now"} delayKind
   * @param {string} reason
   * @param {number} [code]
   * @param {boolean} [freshToken]
   * @private
   */
  _retry(delayKind, reason, code, freshToken = false) {
    let delay = 0;
    if (delayKind === "backoff") {
      delay = backoffDelay(this._attempt, this._options.backoff, this._random);
      this._attempt += 1;
    } else if (delayKind === "restart") {
      delay = restartDelay(this._options.restartWindowMs ?? 3000, this._random);
    }
    /** @type {{code?: number, retryInMs: number}} */
    const extra = { retryInMs: delay };
    if (code !== undefined) extra.code = code;
    this._setState("reconnecting", reason, extra);
    const generation = this._generation;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => {
      if (generation === this._generation) void this._open(freshToken);
    }, delay);
  }

  // ------------------------------------------------------------------ frames

  /**
   * @param {Record<string, unknown>} frame
   * @returns {number}
   * @private
   */
  _send(frame) {
    const id = this._nextId++;
    this._ws?.send(JSON.stringify({ ...frame, id }));
    return id;
  }

  /**
   * Send an op and remember what it was, to handle its answer.
   *
   * @param {Record<string, unknown> & {op: string, channel?: string}} frame
   * @param {(answer: any) => void} [onAnswer]
   * @private
   */
  _request(frame, onAnswer = () => {}) {
    if (!this._ws || !this._helloed) return;
    const id = this._send(frame);
    /** @type {{op: string, channel?: string, resolve: (frame: any) => void}} */
    const entry = { op: frame.op, resolve: onAnswer };
    if (frame.channel !== undefined) entry.channel = frame.channel;
    this._pending.set(id, entry);
  }

  /**
   * @param {unknown} data
   * @private
   */
  _onMessage(data) {
    if (typeof data !== "string") return;
    /** @type {any} */
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    this._lastFrameAt = Date.now();
    this._pingSentAt = null;
    const pending = typeof frame.id === "number" ? this._pending.get(frame.id) : undefined;
    if (pending) this._pending.delete(frame.id);
    if (frame.channel === "presence" || pending?.channel === "presence") {
      this._onPresenceFrame(frame, pending);
      if (pending) pending.resolve(frame);
      return;
    }
    switch (frame.op) {
      case "hello":
        this._onHello(frame);
        break;
      case "event":
        this._onEvent(frame);
        break;
      case "subscribed":
        this._onSubscribed(frame);
        break;
      case "unsubscribed":
        if (!pending) this._onDropped(frame.channel);
        break;
      case "error":
        if (pending?.op === "subscribe" && pending.channel) this._onSubscribeError(pending.channel, frame);
        else if (!pending) this._report(new Error(`gateway error ${frame.code}: ${frame.message}`));
        break;
      default:
        break;
    }
    if (pending) pending.resolve(frame);
  }

  /**
   * @param {Hello} hello
   * @private
   */
  _onHello(hello) {
    clearTimeout(this._connectTimer);
    this._helloed = true;
    this._hello = hello;
    this._attempt = 0;
    this._askedAfterRefusal = false;
    this._unexplained = 0;
    if (this._mode === "background") this._request({ op: "mode", mode: "background" });
    if (hello.user_id !== null && this._options.inbox !== false) {
      const channel = `user:${hello.user_id}`;
      if (this._inboxChannel !== channel) {
        this._inboxChannel = channel;
        this._inboxState = new InboxState();
        this._book.forget(channel);
      }
      // The inbox starts from the beginning of the channel (since 0).
      if (this._book.lastSeq(channel) === null) this._book.forget(channel);
      this._book.track(channel, 0);
      this._inboxState.beginSync(hello.unread);
    }
    for (const channel of this._book.channels()) {
      if (channel === this._inboxChannel) this._syncInbox();
      else this._subscribeNow(channel);
    }
    if (this._presenceListeners.size > 0) this._subscribePresence();
    this._scheduleRefresh();
    this._startPinging();
    // Last: a listener that subscribes now must find the others already sent.
    this._setState("open", `connected as ${hello.role}`);
  }

  /**
   * (Re)load the inbox's history; the answer to the `ping` sent right after
   * comes after every frame of it, since the gateway answers ops in order.
   * @private
   */
  _syncInbox() {
    if (this._inboxChannel === null) return;
    this._subscribeNow(this._inboxChannel);
    this._request({ op: "ping" }, () => this._inboxSynced());
  }

  /**
   * @param {string} channel
   * @private
   */
  _subscribeNow(channel) {
    const op = this._book.subscribeOp(channel);
    this._request({ op: "subscribe", ...op });
  }

  /** @param {{channel: string, seq: number, recovered: boolean}} frame @private */
  _onSubscribed(frame) {
    const channel = frame.channel;
    const gap = this._book.subscribed(channel, frame.seq, frame.recovered);
    if (channel === this._inboxChannel) this._inboxState.historyAnswered(frame.seq);
    for (const entry of this._handlers.get(channel) ?? []) {
      if (!entry.settled) {
        entry.settled = true;
        entry.settle({ channel, seq: frame.seq, recovered: frame.recovered });
      }
      if (gap && entry.options.onGap) this._call(entry.options.onGap, gap);
    }
    if (gap && channel === this._inboxChannel) this._emitInbox();
  }

  /**
   * @param {ChannelEvent} frame
   * @private
   */
  _onEvent(frame) {
    const { channel, seq } = frame;
    if (!this._book.accept(channel, seq)) {
      if (channel === this._inboxChannel && this._book.isAwaiting(channel)) this._inboxState.seenEarly(seq);
      return;
    }
    /** @type {ChannelEvent} */
    const event = { channel, seq, type: frame.type, data: frame.data, ts: frame.ts };
    for (const entry of [...(this._handlers.get(channel) ?? [])]) this._call(entry.handler, event);
    if (channel === this._inboxChannel) {
      this._inboxState.add(event);
      if (this._inboxState.synced) this._emitInbox();
    }
  }

  /**
   * @param {string} channel
   * @param {GatewayError} error
   * @private
   */
  _onSubscribeError(channel, error) {
    if (error.code === "unavailable" || error.code === "rate_limited") {
      // Transient: ask again a little later, on this connection.
      const ws = this._ws;
      setTimeout(() => {
        if (this._ws !== ws || !this._helloed || !this._book.has(channel)) return;
        if (channel === this._inboxChannel) this._syncInbox();
        else this._subscribeNow(channel);
      }, 1000 + Math.floor(this._random() * 1000));
      return;
    }
    this._end(channel, error);
  }

  /**
   * The gateway unsubscribed us on its own (a refreshed token lost a right).
   *
   * @param {string} channel
   * @private
   */
  _onDropped(channel) {
    this._end(channel, { code: "forbidden", message: "the gateway ended this subscription", channel });
  }

  /**
   * @param {string} channel
   * @param {GatewayError} error
   * @private
   */
  _end(channel, error) {
    const entries = this._handlers.get(channel) ?? new Set();
    this._handlers.delete(channel);
    if (channel !== this._inboxChannel) this._book.forget(channel);
    for (const entry of entries) {
      if (!entry.settled) {
        entry.settled = true;
        entry.settle({ channel, error });
      }
      if (entry.options.onError) this._call(entry.options.onError, error);
      else this._report(new Error(`subscription to ${channel} ended: ${error.code} ${error.message}`));
    }
  }

  // ------------------------------------------------------------------ subscriptions

  /**
   * Receive the events of `channel`, each once and in seq order, across
   * reconnects. Several handlers may share a channel.
   *
   * @template [T=unknown]
   * @param {string} channel `feed`, `leaderboard`, `activity`, `resources`, `reviews`, `user:<id>` (`presence`: see `client.presence`)
   * @param {(event: ChannelEvent<T>) => void} handler
   * @param {SubscribeOptions} [options]
   * @returns {Subscription}
   */
  subscribe(channel, handler, options = {}) {
    const name = canonical(channel);
    if (name === "presence") throw new TypeError("presence has no events: use client.presence.onChange");
    /** @type {(result: SubscribeResult) => void} */
    let settle = () => {};
    /** @type {Promise<SubscribeResult>} */
    const ready = new Promise((resolve) => {
      settle = resolve;
    });
    const entry = { handler: /** @type {(event: ChannelEvent<any>) => void} */ (handler), options, settle, settled: false };
    let entries = this._handlers.get(name);
    if (!entries) {
      entries = new Set();
      this._handlers.set(name, entries);
    }
    entries.add(entry);
    if (!this._book.has(name)) {
      this._book.track(name, options.since ?? null);
      if (this._helloed) this._subscribeNow(name);
    } else if (this._helloed && !this._book.isAwaiting(name) && this._book.lastSeq(name) !== null) {
      // Already live on this connection (the inbox, or another handler): events from now on.
      entry.settled = true;
      settle({ channel: name, seq: /** @type {number} */ (this._book.lastSeq(name)), recovered: true });
    }
    return {
      channel: name,
      ready,
      unsubscribe: () => this._unsubscribe(name, entry),
    };
  }

  /**
   * @param {string} channel
   * @param {any} entry
   * @private
   */
  _unsubscribe(channel, entry) {
    const entries = this._handlers.get(channel);
    if (!entries || !entries.delete(entry)) return;
    if (entries.size > 0) return;
    this._handlers.delete(channel);
    if (channel === this._inboxChannel) return; // the inbox keeps it
    this._book.forget(channel);
    this._request({ op: "unsubscribe", channel });
  }

  // ------------------------------------------------------------------ mode, refresh, ping

  /**
   * Tell the gateway whether the page is seen. In `background` it sends only
   * `reviews` and `user:` events; back in `foreground` the client resubscribes
   * the other channels with `since` to get what it skipped meanwhile.
   * Called on its own from `document.visibilityState` in a browser.
   *
   * @param {"foreground" | "background"} mode
   */
  setMode(mode) {
    if (mode === this._mode) return;
    this._mode = mode;
    if (!this._helloed) return; // sent after the next hello
    this._request({ op: "mode", mode });
    if (mode === "foreground") {
      for (const channel of this._book.channels()) {
        if (!PRIORITY(channel) && !this._book.isAwaiting(channel)) this._subscribeNow(channel);
      }
    }
  }

  /** @private */
  _followVisibility() {
    if (typeof document === "undefined") return;
    this.setMode(document.visibilityState === "hidden" ? "background" : "foreground");
  }

  /** @private */
  _scheduleRefresh() {
    clearTimeout(this._refreshTimer);
    const provider = this._options.getToken;
    if (!provider || !this._token) return;
    const expiresAt = tokenExpiry(this._token);
    if (expiresAt === null) return;
    const delay = refreshDelay(expiresAt, Date.now(), this._options.refreshMarginMs ?? 60_000);
    const ws = this._ws;
    this._refreshTimer = setTimeout(async () => {
      let token;
      try {
        token = await provider();
      } catch (error) {
        this._report(error);
        return; // the gateway closes with 4401 at expiry; the reconnect asks again
      }
      if (!token || this._ws !== ws || !this._helloed) return;
      this._request({ op: "refresh", token }, (answer) => {
        if (answer.op === "ok") {
          this._token = token;
          this._scheduleRefresh();
          // The new token's membership decides whether names are shown: take a new snapshot.
          if (this._presenceListeners.size > 0) this._subscribePresence();
        } else {
          this._report(new Error(`token refresh refused: ${answer.code} ${answer.message}`));
        }
      });
    }, delay);
  }

  /** @private */
  _startPinging() {
    clearInterval(this._pingTimer);
    const interval = this._options.pingIntervalMs ?? 25_000;
    const timeout = this._options.pongTimeoutMs ?? 10_000;
    const ws = this._ws;
    this._lastFrameAt = Date.now();
    this._pingSentAt = null;
    const tick = Math.max(50, Math.min(interval, timeout) / 2);
    this._pingTimer = setInterval(() => {
      if (this._ws !== ws || !ws) return;
      const now = Date.now();
      if (this._pingSentAt !== null && now - this._pingSentAt > timeout) {
        this._abandon(ws, "the gateway stopped answering");
      } else if (this._pingSentAt === null && now - this._lastFrameAt > interval) {
        this._pingSentAt = now;
        this._request({ op: "ping" });
      }
    }, tick);
  }

  // ------------------------------------------------------------------ presence

  /**
   * @param {() => void} listener
   * @returns {() => void}
   * @private
   */
  _listenPresence(listener) {
    const first = this._presenceListeners.size === 0;
    this._presenceListeners.add(listener);
    if (first && this._helloed) this._subscribePresence();
    return () => {
      if (!this._presenceListeners.delete(listener) || this._presenceListeners.size > 0) return;
      this._request({ op: "unsubscribe", channel: "presence" });
      this._presenceState = new PresenceState();
    };
  }

  /** @private */
  _subscribePresence() {
    this._request({ op: "subscribe", channel: "presence" });
  }

  /**
   * `subscribed`, a `presence` frame, or the error answering our `subscribe`.
   *
   * @param {any} frame
   * @param {{op: string} | undefined} pending
   * @private
   */
  _onPresenceFrame(frame, pending) {
    if (this._presenceListeners.size === 0) return; // stopped meanwhile
    if (frame.op === "subscribed") {
      this._presenceState.resubscribed();
    } else if (frame.op === "presence") {
      this._presenceState.apply(frame);
      for (const listener of [...this._presenceListeners]) this._call(listener, undefined);
    } else if (frame.op === "error" && pending?.op === "subscribe") {
      if (frame.code !== "unavailable" && frame.code !== "rate_limited") {
        this._report(new Error(`presence refused: ${frame.code} ${frame.message}`));
        return;
      }
      const ws = this._ws;
      setTimeout(() => {
        if (this._ws === ws && this._helloed && this._presenceListeners.size > 0) this._subscribePresence();
      }, 1000 + Math.floor(this._random() * 1000));
    }
  }

  /**
   * Appear offline (`false`) or online again (`true`) to everyone, on every
   * device: the gateway keeps the choice for the user (30 days after it was
   * last set), so it is not sent again after a reconnect. Resolves when the
   * gateway answered `ok`; rejects with the gateway's error (`forbidden` for
   * a guest, `unavailable`: retry) or when the client is not connected.
   *
   * @param {boolean} visible
   * @returns {Promise<void>}
   */
  setVisible(visible) {
    return new Promise((resolve, reject) => {
      if (!this._ws || !this._helloed) {
        reject(Object.assign(new Error("not connected"), { code: "unavailable" }));
        return;
      }
      this._request({ op: "visibility", visible }, (answer) => {
        if (answer.op === "ok") resolve();
        else reject(Object.assign(new Error(`visibility: ${answer.code} ${answer.message}`), { code: answer.code }));
      });
    });
  }

  // ------------------------------------------------------------------ inbox

  /** @private */
  _inboxSynced() {
    if (this._inboxChannel === null || this._book.isAwaiting(this._inboxChannel)) return;
    this._inboxState.endSync();
    if (this._pendingRead !== null) this._sendRead(this._pendingRead);
    this._emitInbox();
  }

  /** @private */
  _emitInbox() {
    for (const listener of [...this._inboxListeners]) this._call(listener, undefined);
  }

  /**
   * @param {number | undefined} seq
   * @private
   */
  _markRead(seq) {
    const state = this._inboxState;
    const target = Math.min(seq ?? state.latestSeq, state.latestSeq);
    if (target <= state.readSeq && this._pendingRead === null) return;
    state.markRead(target);
    this._pendingRead = Math.max(this._pendingRead ?? 0, target);
    if (state.synced) this._sendRead(this._pendingRead);
    this._emitInbox();
  }

  /**
   * @param {number} seq
   * @private
   */
  _sendRead(seq) {
    if (!this._inboxChannel || !this._helloed) return;
    this._request({ op: "read", channel: this._inboxChannel, seq }, (answer) => {
      if (answer.op === "ok" && this._pendingRead !== null && this._pendingRead <= seq) {
        this._pendingRead = null;
      }
    });
  }
}

/**
 * What an `Inbox` may do with its client.
 *
 * @typedef {object} InboxPort
 * @property {() => InboxState} state
 * @property {(listener: () => void) => () => void} listen
 * @property {(seq: number | undefined) => void} markRead
 */

/**
 * The signed-in user's notification inbox: the `user:<id>` channel from its
 * beginning, the unread count and the read position. It survives reconnects.
 */
export class Inbox {
  /** @param {InboxPort} port */
  constructor(port) {
    /** @private */
    this._port = port;
  }

  /**
   * The notifications, oldest first.
   *
   * @returns {readonly ChannelEvent[]}
   */
  get items() {
    return this._port.state().items;
  }

  /** How many notifications are unread. */
  get unread() {
    return this._port.state().unread;
  }

  /** The highest seq marked read. */
  get readSeq() {
    return this._port.state().readSeq;
  }

  /** Whether the history of the current connection has been loaded. */
  get ready() {
    return this._port.state().synced;
  }

  /**
   * Call `listener` whenever the items or the unread count change; returns a
   * function that stops it.
   *
   * @param {() => void} listener
   * @returns {() => void}
   */
  onChange(listener) {
    return this._port.listen(listener);
  }

  /**
   * Mark every notification up to `seq` (default: the newest) as read, here
   * and on the gateway (the `read` op; sent after the next connection if the
   * client is offline).
   *
   * @param {number} [seq]
   */
  markRead(seq) {
    this._port.markRead(seq);
  }
}
