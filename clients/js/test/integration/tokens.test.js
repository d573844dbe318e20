// Tokens: refreshed before they expire without losing an event; 4401 when no
// refresh came; a refused token ends in `unauthorized` after one provider
// call, with no reconnect loop (handshakes counted at a TCP proxy).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import WebSocket from "ws";

import {
  TcpProxy,
  createPost,
  env,
  exactlyOnceInOrder,
  makeUser,
  newClient,
  reply,
  signToken,
  skip,
  sleep,
  waitFor,
} from "./helpers.js";

/** @type {(() => unknown)[]} */
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function proxyToGateway() {
  const proxy = new TcpProxy(env.gatewayPort);
  await proxy.listen();
  cleanups.push(() => proxy.close());
  return proxy;
}

/**
 * @param {string} postId
 * @param {number} count
 * @param {number} gapMs
 */
async function replies(postId, count, gapMs) {
  /** @type {string[]} */
  const ids = [];
  for (let i = 0; i < count; i += 1) {
    ids.push((await reply(postId, `r${i}`)).id);
    await sleep(gapMs);
  }
  return ids;
}

test("short-lived tokens are refreshed before they expire, without losing an event", { skip, timeout: 60_000 }, async () => {
  const proxy = await proxyToGateway();
  const author = makeUser();
  let calls = 0;
  const { client, states } = newClient({
    url: proxy.url,
    getToken: async () => {
      calls += 1;
      return author.token(4); // four seconds
    },
  });
  cleanups.push(() => client.close());
  /** @type {{seq: number, id: string}[]} */
  const inbox = [];
  client.subscribe(`user:${author.id}`, (/** @type {any} */ event) => inbox.push({ seq: event.seq, id: event.data.id }));
  client.connect();
  await waitFor(() => client.state === "open", 15_000, "open");
  const post = await createPost(author.token(), "refresh me");
  const ids = await replies(post.id, 24, 400); // ten seconds: two or three token lives
  await waitFor(() => inbox.length >= ids.length, 15_000, "all notifications");
  exactlyOnceInOrder(inbox, ids, "inbox");
  console.log(`# ${ids.length} events over ~10 s with 4 s tokens: provider called ${calls}x, ${proxy.handshakes.length} connection(s)`);
  assert.ok(calls >= 3, `the provider was called ${calls} times`);
  assert.equal(proxy.handshakes.length, 1, "one connection: refreshed in place, never closed");
  assert.ok(states.every((change) => change.code !== 4401));
});

test("4401 when the token expires without refresh: a fresh token, reconnect, nothing lost", { skip, timeout: 60_000 }, async () => {
  const proxy = await proxyToGateway();
  const author = makeUser();
  let calls = 0;
  const { client, states } = newClient({
    url: proxy.url,
    getToken: async () => {
      calls += 1;
      return author.token(3);
    },
    // Refresh far too late, so the gateway closes with 4401 first.
    refreshMarginMs: -60_000,
  });
  cleanups.push(() => client.close());
  /** @type {{seq: number, id: string}[]} */
  const inbox = [];
  client.subscribe(`user:${author.id}`, (/** @type {any} */ event) => inbox.push({ seq: event.seq, id: event.data.id }));
  client.connect();
  await waitFor(() => client.state === "open", 15_000, "open");
  const post = await createPost(author.token(), "expire me");
  const ids = await replies(post.id, 16, 400);
  await waitFor(() => inbox.length >= ids.length, 15_000, "all notifications");
  exactlyOnceInOrder(inbox, ids, "inbox");
  const expired = states.filter((change) => change.code === 4401);
  console.log(`# 4401 seen ${expired.length}x, provider called ${calls}x, ${proxy.handshakes.length} connections`);
  assert.ok(expired.length >= 1);
  assert.ok(calls >= 2);
  assert.equal(client.state, "open");
});

for (const [what, WebSocketImpl] of [
  ["the ws package (it tells the 401)", WebSocket],
  ["a WebSocket that hides the 401, as browsers do", BrowserLikeWebSocket()],
]) {
  test(`a refused token ends in unauthorized after one provider call: ${what}`, { skip, timeout: 30_000 }, async () => {
    const proxy = await proxyToGateway();
    let calls = 0;
    const forged = signToken({ sub: makeUser().id }).replace(/.$/, (c) => (c === "A" ? "B" : "A"));
    const { client, states } = newClient({
      url: proxy.url,
      token: "garbage.not.a-token",
      getToken: async () => {
        calls += 1;
        return forged;
      },
      WebSocket: /** @type {any} */ (WebSocketImpl),
      backoff: { baseMs: 50, capMs: 200 },
    });
    cleanups.push(() => client.close());
    client.connect();
    await waitFor(() => client.state === "unauthorized", 15_000, "unauthorized");
    const handshakes = proxy.handshakes.length;
    await sleep(2000);
    console.log(`# ${what}: ${handshakes} handshakes, provider called ${calls}x; ${client.reason}`);
    assert.equal(calls, 1, "the provider is asked once");
    assert.equal(handshakes, 2, "the first token, then the provider's");
    assert.equal(proxy.handshakes.length, handshakes, "no reconnect loop");
    assert.equal(client.state, "unauthorized");
    assert.match(client.reason, /refused/);
    assert.ok(states.every((change) => change.state !== "open"));
  });
}

test("after unauthorized, connect() starts again with a new token from the provider", { skip, timeout: 30_000 }, async () => {
  const proxy = await proxyToGateway();
  const user = makeUser();
  let good = false;
  const { client } = newClient({
    url: proxy.url,
    getToken: async () => (good ? user.token() : "refused.token.value"),
  });
  cleanups.push(() => client.close());
  client.connect();
  await waitFor(() => client.state === "unauthorized", 15_000, "unauthorized");
  const before = proxy.handshakes.length;
  good = true; // the user signed in again
  client.connect();
  await waitFor(() => client.state === "open", 15_000, "open");
  assert.equal(client.userId, user.id);
  assert.equal(proxy.handshakes.length - before, 1, "no handshake wasted on the refused token");
});

test("an expired token without a provider: unauthorized at once", { skip, timeout: 30_000 }, async () => {
  const proxy = await proxyToGateway();
  const { client } = newClient({ url: proxy.url, token: signToken({ ttl: -10 }), WebSocket: /** @type {any} */ (BrowserLikeWebSocket()) });
  cleanups.push(() => client.close());
  client.connect();
  await waitFor(() => client.state === "unauthorized", 15_000, "unauthorized");
  await sleep(1000);
  assert.equal(proxy.handshakes.length, 1);
});

test("an unreachable gateway is retried with backoff, never unauthorized", { skip, timeout: 30_000 }, async () => {
  const proxy = await proxyToGateway();
  const url = proxy.url;
  await proxy.close(); // nothing listens there any more
  let calls = 0;
  const { client, states } = newClient({
    url,
    getToken: async () => {
      calls += 1;
      return makeUser().token();
    },
    WebSocket: /** @type {any} */ (BrowserLikeWebSocket()),
    backoff: { baseMs: 20, capMs: 100 },
  });
  cleanups.push(() => client.close());
  client.connect();
  await waitFor(() => states.filter((change) => change.state === "reconnecting").length >= 10, 20_000, "ten retries");
  assert.equal(client.state, "reconnecting");
  assert.equal(calls, 1, "a network failure is no reason to ask for another token");
});

test("a refused token whose 401 cannot be read (cross-origin browser): unauthorized after 2 x 3 handshakes", { skip, timeout: 30_000 }, async () => {
  const proxy = await proxyToGateway();
  let calls = 0;
  /** @type {typeof fetch} */
  const crossOriginFetch = async (input, init) => {
    // A browser on another origin: the gateway's answer carries no CORS
    // headers, so only an opaque `no-cors` fetch succeeds.
    if (init?.mode !== "no-cors") throw new TypeError("Failed to fetch");
    await fetch(input, init);
    return new Response(null, { status: 200 });
  };
  const { client } = newClient({
    url: proxy.url,
    token: "garbage.not.a-token",
    getToken: async () => {
      calls += 1;
      return "still.not.a-token";
    },
    WebSocket: /** @type {any} */ (BrowserLikeWebSocket()),
    checkToken: crossOriginFetch,
    backoff: { baseMs: 20, capMs: 100 },
  });
  cleanups.push(() => client.close());
  client.connect();
  await waitFor(() => client.state === "unauthorized", 20_000, "unauthorized");
  const handshakes = proxy.handshakes.length;
  await sleep(1000);
  console.log(`# cross-origin refusal: ${handshakes} handshakes, provider called ${calls}x; ${client.reason}`);
  assert.equal(calls, 1);
  assert.equal(handshakes, 6);
  assert.equal(proxy.handshakes.length, handshakes, "no reconnect loop");
});

/**
 * The `ws` WebSocket with the reason of a failed handshake hidden, the way a
 * browser reports it: a bare `error` then `close` 1006.
 */
function BrowserLikeWebSocket() {
  return class extends WebSocket {
    /** @param {((event: any) => void) | null} listener */
    set onerror(listener) {
      super.onerror = listener && (() => listener({ type: "error" }));
    }

    get onerror() {
      return super.onerror;
    }
  };
}
