// A gateway stopped with SIGTERM (1012) and replaced on another port behind
// the same URL (the proxy moves): every event once and in order; and the
// reconnects of 200 clients spread over the restart window.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  TcpProxy,
  createPost,
  env,
  exactlyOnceInOrder,
  makeUser,
  newClient,
  publishReplies,
  recordingClient,
  skip,
  sleep,
  startGateway,
  waitFor,
} from "./helpers.js";

/** @type {(() => unknown)[]} */
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

// Two more gateway processes, started together (a start takes seconds): the
// restart test stops `first` and moves to `second`; the spread test stops
// `second` and moves to the stack's own gateway.
/** @type {Awaited<ReturnType<typeof startGateway>>[]} */
const extra = [];
before(async () => {
  if (skip) return;
  extra.push(...(await Promise.all([startGateway(), startGateway()])));
  for (const gateway of extra) cleanups.push(() => gateway.stop());
});

test("a gateway stopped with SIGTERM (1012) and replaced on another port: every event once", { skip, timeout: 150_000 }, async () => {
  const [first, second] = extra;
  const proxy = new TcpProxy(first.port);
  await proxy.listen();
  cleanups.push(() => proxy.close());
  const author = makeUser();
  const post = await createPost(author.token(), "rolling restart");
  const recorder = recordingClient(proxy, author, post.id, { restartWindowMs: 1000 }, cleanups);
  await waitFor(() => recorder.client.state === "open" && recorder.client.inbox.ready, 15_000, "the client to open");

  let publishing = true;
  const published = publishReplies(post.id, 10, () => !publishing);
  await sleep(1500);
  // As in a rolling restart the replacement is already up: the proxy sends new
  // connections to it, then the old one gets SIGTERM and closes with 1012.
  proxy.targetPort = second.port;
  await first.stop();
  await sleep(2000);
  publishing = false;
  const ids = await published;
  await waitFor(
    () => recorder.feed.length >= ids.length && recorder.inbox.length >= ids.length,
    30_000,
    `all ${ids.length} events (feed ${recorder.feed.length}, inbox ${recorder.inbox.length})`,
  ).catch(() => {});
  const restarts = recorder.states.filter((change) => change.code === 1012);
  console.log(`# restart: ${ids.length} events, feed ${recorder.feed.length}, inbox ${recorder.inbox.length}, 1012 seen ${restarts.length}x`);
  assert.equal(restarts.length, 1, "the client saw the 1012");
  assert.ok((restarts[0].retryInMs ?? Infinity) < 1000, "reconnect within the restart window");
  exactlyOnceInOrder(recorder.feed, ids, "feed");
  exactlyOnceInOrder(recorder.inbox, ids, "inbox");
  assert.equal(recorder.client.state, "open");
});

test("200 clients reconnect after a 1012 spread over the restart window", { skip, timeout: 150_000 }, async () => {
  const windowMs = 4000;
  const stopping = extra[1];
  const proxy = new TcpProxy(stopping.port);
  await proxy.listen();
  cleanups.push(() => proxy.close());
  const clients = Array.from({ length: 200 }, () => {
    const { client } = newClient({ url: proxy.url, restartWindowMs: windowMs });
    client.subscribe("feed", () => {});
    client.connect();
    cleanups.push(() => client.close());
    return client;
  });
  await waitFor(() => clients.every((client) => client.state === "open"), 60_000, "200 clients open");
  proxy.targetPort = env.gatewayPort;
  const before = proxy.handshakes.length;
  const stoppedAt = performance.now();
  await stopping.stop();
  await waitFor(() => proxy.handshakes.length - before >= 200, 60_000, "200 reconnections");
  await waitFor(() => clients.every((client) => client.state === "open"), 60_000, "200 clients open again");
  const delays = proxy.handshakes.slice(before).map((at) => at - stoppedAt).sort((a, b) => a - b);
  const spread = delays.at(-1) - delays[0];
  /** @type {number[]} */
  const perSecond = [];
  for (const delay of delays) {
    const bucket = Math.floor((delay - delays[0]) / 1000);
    perSecond[bucket] = (perSecond[bucket] ?? 0) + 1;
  }
  const quantile = (/** @type {number} */ q) => Math.round(delays[Math.floor(q * (delays.length - 1))]);
  console.log(
    `# 200 reconnects after 1012 (window ${windowMs} ms): first ${Math.round(delays[0])} ms, p50 ${quantile(0.5)} ms, ` +
      `p90 ${quantile(0.9)} ms, last ${Math.round(delays.at(-1))} ms; per second ${JSON.stringify(perSecond.map((n) => n ?? 0))}`,
  );
  // Spread over the window, not bunched: at least half the window between the
  // first and the last, and no second receives more than half the clients.
  assert.ok(spread > windowMs / 2, `spread only ${Math.round(spread)} ms`);
  assert.ok(Math.max(...perSecond.map((n) => n ?? 0)) <= 100, `bunched: ${perSecond}`);
});
