// Connections cut by a TCP proxy every 1-3 s while events flow (15 s; 30 s
// with CL_LONG=1): every event must reach the handlers exactly once and in seq
// order, on `feed` and on the user's inbox channel.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import {
  TcpProxy,
  createPost,
  env,
  exactlyOnceInOrder,
  makeUser,
  publishReplies,
  recordingClient,
  skip,
  sleep,
  waitFor,
} from "./helpers.js";

/** @type {(() => unknown)[]} */
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test("connections cut every 1-3 s while 10 events/s flow: every event once, in order", { skip, timeout: 120_000 }, async () => {
  const seconds = env.long ? 60 : 30;
  const proxy = new TcpProxy(env.gatewayPort);
  await proxy.listen();
  cleanups.push(() => proxy.close());
  const author = makeUser();
  const post = await createPost(author.token(), "under fire");
  const recorder = recordingClient(proxy, author, post.id, { backoff: { baseMs: 100, capMs: 2000 } }, cleanups);
  await waitFor(() => recorder.client.state === "open" && recorder.client.inbox.ready, 15_000, "the client to open");

  let stopped = false;
  let cuts = 0;
  const chaos = (async () => {
    while (!stopped) {
      await sleep(1000 + Math.random() * 2000);
      if (stopped) break;
      proxy.cutAll();
      cuts += 1;
    }
  })();
  const deadline = Date.now() + seconds * 1000;
  const ids = await publishReplies(post.id, 10, () => Date.now() > deadline);
  stopped = true;
  await chaos;
  await waitFor(
    () => recorder.feed.length >= ids.length && recorder.inbox.length >= ids.length,
    30_000,
    `all ${ids.length} events (feed ${recorder.feed.length}, inbox ${recorder.inbox.length})`,
  ).catch(() => {});
  const ratio = (/** @type {number} */ n) => `${n}/${ids.length} (${((100 * n) / ids.length).toFixed(1)} %)`;
  console.log(
    `# ${seconds} s, ${cuts} cuts, ${proxy.handshakes.length} connections: delivered feed ${ratio(recorder.feed.length)}, ` +
      `inbox ${ratio(recorder.inbox.length)}`,
  );
  assert.ok(cuts >= Math.floor(seconds / 3), `only ${cuts} cuts`);
  exactlyOnceInOrder(recorder.feed, ids, "feed");
  exactlyOnceInOrder(recorder.inbox, ids, "inbox");
  assert.equal(recorder.feed.length, ids.length);
  assert.equal(recorder.inbox.length, ids.length);
});

