// What the integration tests share: the stack's addresses (from the
// environment set by tests/integration/clients/test_js_client.py), tokens,
// HTTP calls to the posts service, a TCP proxy that can cut connections and
// move to another gateway, and waiting on conditions with deadlines.

import { spawn } from "node:child_process";
import { createHmac, randomUUID } from "node:crypto";
import net from "node:net";

import WebSocket from "ws";

import { CommunityClient } from "../../src/index.js";

export const env = {
  gatewayUrl: process.env.CL_GATEWAY_URL,
  gatewayPort: Number(process.env.CL_GATEWAY_PORT),
  postsUrl: process.env.CL_POSTS_URL,
  goalsUrl: process.env.CL_GOALS_URL,
  secret: process.env.CL_JWT_SECRET ?? "",
  python: process.env.CL_PYTHON,
  root: process.env.CL_ROOT,
  long: process.env.CL_LONG === "1",
};

/** Skip the integration tests when run without a stack (`npm test` alone). */
export const skip = env.gatewayUrl
  ? false
  : "no stack: run through tests/integration/clients/test_js_client.py (./run test)";

/**
 * An HS256 token as the services accept it.
 *
 * @param {{sub?: string, role?: string, name?: string, ttl?: number, member?: boolean}} [claims]
 */
export function signToken(claims = {}) {
  const sub = claims.sub ?? randomUUID();
  const payload = {
    sub,
    role: claims.role ?? "student",
    name: claims.name ?? `Student ${sub.slice(0, 6)}`,
    exp: Math.floor(Date.now() / 1000) + (claims.ttl ?? 3600),
    ...(claims.member === undefined ? {} : { member: claims.member }),
  };
  const part = (/** @type {object} */ value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}`;
  const signature = createHmac("sha256", env.secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/** A signed-in student: its id and a token maker. */
export function makeUser(role = "student") {
  const id = randomUUID();
  return { id, role, token: (ttl = 3600) => signToken({ sub: id, role, ttl }) };
}

/**
 * @param {string} path
 * @param {string} token
 * @param {object} body
 */
export async function postJson(path, token, body) {
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(`${env.postsUrl}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    if (response.status === 201 || response.status === 200) return response.json();
    if (response.status === 503 && attempt < 5) {
      await sleep(200);
      continue;
    }
    throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
  }
}

/** @param {string} token @param {string} content */
export const createPost = (token, content = "hello") => postJson("/posts", token, { content });

/** @param {string} postId @param {string} content */
export const reply = (postId, content = "a reply") =>
  postJson(`/posts/${postId}/replies`, signToken(), { content });

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Wait until `check()` is true.
 *
 * @param {() => boolean} check
 * @param {number} timeoutMs
 * @param {string} what
 */
export async function waitFor(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * @param {Partial<import("../../src/client.js").ClientOptions>} options
 */
export function newClient(options) {
  const client = new CommunityClient({
    url: env.gatewayUrl ?? "",
    WebSocket: /** @type {any} */ (WebSocket),
    onError: () => {},
    ...options,
  });
  /** @type {import("../../src/client.js").StateChange[]} */
  const states = [];
  client.onState((change) => states.push(change));
  return { client, states };
}

/**
 * A TCP proxy in front of a gateway: counts connections (with their times),
 * cuts them on demand, and can point at another port ("wherever the URL leads").
 */
export class TcpProxy {
  /** @param {number} targetPort */
  constructor(targetPort) {
    this.targetPort = targetPort;
    /** @type {Set<net.Socket>} */
    this.sockets = new Set();
    /** @type {number[]} when each connection arrived */
    this.arrivals = [];
    /** @type {number[]} when each websocket handshake (an HTTP upgrade request) arrived */
    this.handshakes = [];
    this.server = net.createServer((client) => this._accept(client));
  }

  /** @returns {Promise<number>} the proxy's port */
  async listen() {
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve(undefined)));
    return /** @type {net.AddressInfo} */ (this.server.address()).port;
  }

  get url() {
    return `ws://127.0.0.1:${/** @type {net.AddressInfo} */ (this.server.address()).port}/ws`;
  }

  /** @param {net.Socket} client */
  _accept(client) {
    const arrived = performance.now();
    this.arrivals.push(arrived);
    client.once("data", (chunk) => {
      if (/^upgrade:\s*websocket/im.test(chunk.toString("latin1"))) this.handshakes.push(arrived);
    });
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Cut every connection at the TCP level (no close frame: the client sees 1006). */
  cutAll() {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close() {
    this.cutAll();
    await new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }
}

/**
 * Start another gateway process on a free port with the stack's environment.
 *
 * @returns {Promise<{port: number, process: import("node:child_process").ChildProcess, stop: () => Promise<void>}>}
 */
export async function startGateway() {
  const port = await freePort();
  const child = spawn(env.python ?? "python3", ["-m", "community_gateway.app"], {
    cwd: env.root,
    env: { ...process.env, PORT: String(port) },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/ready`);
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("gateway not ready within 60 s");
    await sleep(200);
  }
  return {
    port,
    process: child,
    stop: async () => {
      if (child.exitCode === null) child.kill("SIGTERM");
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {net.AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * Check that what a handler received is each expected id once, in seq order.
 *
 * @param {{seq: number, id: string}[]} received
 * @param {string[]} expected
 * @param {string} what
 */
export function exactlyOnceInOrder(received, expected, what) {
  const seqs = received.map((event) => event.seq);
  for (let i = 1; i < seqs.length; i += 1) {
    if (seqs[i] <= seqs[i - 1]) throw new Error(`${what}: seq ${seqs[i]} after ${seqs[i - 1]}`);
  }
  const counts = new Map();
  for (const { id } of received) counts.set(id, (counts.get(id) ?? 0) + 1);
  const missing = expected.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, count]) => count > 1);
  if (missing.length || duplicated.length) {
    throw new Error(`${what}: ${missing.length} missing, ${duplicated.length} duplicated`);
  }
}

/**
 * Publish replies to `postId` at about `perSecond` until `stop()` says so.
 * Each reply is a `reply.created` on feed and a `reply.received` in the
 * post author's inbox. Returns the reply ids, in the order they were created.
 *
 * @param {string} postId
 * @param {number} perSecond
 * @param {() => boolean} stop
 */
export async function publishReplies(postId, perSecond, stop) {
  /** @type {string[]} */
  const ids = [];
  /** @type {Promise<void>[]} */
  const inFlight = [];
  const start = performance.now();
  for (let n = 0; !stop(); n += 1) {
    inFlight.push(reply(postId, `reply ${n}`).then((created) => void ids.push(created.id)));
    const next = start + ((n + 1) * 1000) / perSecond;
    await sleep(Math.max(0, next - performance.now()));
  }
  await Promise.all(inFlight);
  return ids;
}

/**
 * A signed-in client through `proxy` recording its `feed` replies to
 * `postId` and its inbox notifications.
 *
 * @param {TcpProxy} proxy
 * @param {{id: string, token: (ttl?: number) => string}} user
 * @param {string} postId
 * @param {Partial<import("../../src/client.js").ClientOptions>} [options]
 * @param {(() => unknown)[]} [cleanups] where to register the client's close
 */
export function recordingClient(proxy, user, postId, options = {}, cleanups = []) {
  const { client, states } = newClient({ url: proxy.url, token: user.token(), ...options });
  /** @type {{seq: number, id: string}[]} */
  const feed = [];
  /** @type {{seq: number, id: string}[]} */
  const inbox = [];
  client.subscribe("feed", (/** @type {any} */ event) => {
    if (event.type === "reply.created" && event.data.post_id === postId) feed.push({ seq: event.seq, id: event.data.id });
  });
  client.subscribe(`user:${user.id}`, (/** @type {any} */ event) => {
    if (event.type === "reply.received") inbox.push({ seq: event.seq, id: event.data.id });
  });
  client.connect();
  cleanups.push(() => client.close());
  return { client, states, feed, inbox };
}

