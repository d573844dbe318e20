// A guest and a signed-in client receive live events; the inbox and its
// unread count; `recovered: false` calls `gap`.

import assert from "node:assert/strict";
import net from "node:net";
import { after, test } from "node:test";

import { createPost, makeUser, newClient, reply, skip, waitFor } from "./helpers.js";

/** @type {import("../../src/client.js").CommunityClient[]} */
const clients = [];
after(() => clients.forEach((client) => client.close()));

test("a guest and a signed-in client receive live events on feed", { skip, timeout: 30_000 }, async () => {
  const guest = newClient({});
  const user = makeUser();
  const member = newClient({ token: user.token() });
  clients.push(guest.client, member.client);
  /** @type {Record<string, any[]>} */
  const seen = { guest: [], member: [] };
  const guestSub = guest.client.subscribe("feed", (event) => seen.guest.push(event));
  const memberSub = member.client.subscribe("feed", (event) => seen.member.push(event));
  guest.client.connect();
  member.client.connect();
  const [guestReady, memberReady] = await Promise.all([guestSub.ready, memberSub.ready]);
  assert.equal(guestReady.error, undefined);
  assert.equal(memberReady.error, undefined);
  assert.equal(guest.client.state, "open");
  assert.equal(guest.client.role, "guest");
  assert.equal(member.client.userId, user.id);
  const post = await createPost(user.token(), "live to everyone");
  const created = (/** @type {any} */ event) => event.type === "post.created" && event.data.id === post.id;
  await waitFor(() => seen.guest.some(created) && seen.member.some(created), 10_000, "post.created on both");
  assert.ok(guest.states.some((change) => change.state === "connecting"));
  assert.ok(member.states.at(-1)?.state === "open" && /student/.test(member.states.at(-1)?.reason ?? ""));
});

test("the inbox: history from the beginning, unread from hello, markRead survives a reconnect", { skip, timeout: 40_000 }, async () => {
  const author = makeUser();
  const post = await createPost(author.token(), "reply to me");
  // Three notifications before the client exists.
  for (let i = 0; i < 3; i += 1) await reply(post.id, `early ${i}`);
  const { client } = newClient({ token: author.token() });
  clients.push(client);
  client.connect();
  await waitFor(() => client.inbox.ready && client.inbox.items.length === 3, 15_000, "the inbox history");
  assert.equal(client.inbox.unread, 3, "nothing read yet");
  assert.deepEqual(client.inbox.items.map((event) => event.type), Array(3).fill("reply.received"));
  // A live one.
  await reply(post.id, "live");
  await waitFor(() => client.inbox.items.length === 4, 10_000, "the live notification");
  assert.equal(client.inbox.unread, 4);
  // Read up to the second one.
  client.inbox.markRead(client.inbox.items[1].seq);
  assert.equal(client.inbox.unread, 2);
  // Let the `read` op reach the gateway (answered `ok`), then reconnect: the count holds.
  await new Promise((resolve) => setTimeout(resolve, 500));
  client.close();
  const again = newClient({ token: author.token() });
  clients.push(again.client);
  again.client.connect();
  await waitFor(() => again.client.inbox.ready && again.client.inbox.items.length === 4, 15_000, "history after reconnect");
  assert.equal(again.client.inbox.unread, 2, "the read position survived the reconnect");
  assert.equal(again.client.inbox.readSeq, again.client.inbox.items[1].seq);
  again.client.inbox.markRead();
  assert.equal(again.client.inbox.unread, 0);
  await new Promise((resolve) => setTimeout(resolve, 500));
  again.client.close();
  const third = newClient({ token: author.token() });
  clients.push(third.client);
  third.client.connect();
  await waitFor(() => third.client.inbox.ready, 15_000, "history");
  assert.equal(third.client.inbox.unread, 0);
  assert.equal(third.client.inbox.items.length, 4);
});

test("recovered false calls gap, and events go on", { skip, timeout: 30_000 }, async () => {
  // What the gateway really answers `recovered: false` to here: a `since`
  // beyond the channel's newest seq (a position from a history that was reset).
  const user = makeUser();
  const { client } = newClient({ token: user.token() });
  clients.push(client);
  /** @type {import("../../src/seqs.js").Gap[]} */
  const gaps = [];
  /** @type {any[]} */
  const events = [];
  const sub = client.subscribe("feed", (event) => events.push(event), {
    since: 2 ** 52,
    onGap: (gap) => gaps.push(gap),
  });
  client.connect();
  const result = await sub.ready;
  assert.equal(result.recovered, false);
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0].channel, "feed");
  assert.equal(gaps[0].since, 2 ** 52);
  const post = await createPost(user.token(), "after the gap");
  await waitFor(() => events.some((event) => event.data.id === post.id), 10_000, "a live event after the gap");
});

test("a forbidden channel ends the subscription with onError; the connection stays", { skip, timeout: 20_000 }, async () => {
  const { client } = newClient({ token: makeUser().token() });
  clients.push(client);
  /** @type {any[]} */
  const errors = [];
  const sub = client.subscribe("reviews", () => {}, { onError: (error) => errors.push(error) });
  client.connect();
  const result = await sub.ready;
  assert.equal(result.error?.code, "forbidden");
  assert.equal(errors.length, 1);
  assert.equal(client.state, "open");
});

test("a hidden page asks for background mode and catches up when visible again", { skip, timeout: 30_000 }, async () => {
  // A stand-in for the browser's document: visibilityState and its event.
  const page = Object.assign(new EventTarget(), { visibilityState: "visible" });
  /** @type {any} */ (globalThis).document = page;
  try {
    const user = makeUser();
    const { client } = newClient({ token: user.token() });
    clients.push(client);
    /** @type {any[]} */
    const events = [];
    const sub = client.subscribe("feed", (event) => events.push(event));
    client.connect();
    await sub.ready;
    page.visibilityState = "hidden";
    page.dispatchEvent(new Event("visibilitychange"));
    await new Promise((resolve) => setTimeout(resolve, 300)); // the `mode` op reaches the gateway
    const post = await createPost(user.token(), "while hidden");
    const mine = (/** @type {any} */ event) => event.type === "post.created" && event.data.id === post.id;
    // Background: the gateway skips feed events. Give it time to (not) deliver.
    const reply1 = await reply(post.id, "to be seen later");
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(events.filter(mine).length, 0, "a hidden page receives no feed events");
    page.visibilityState = "visible";
    page.dispatchEvent(new Event("visibilitychange"));
    await waitFor(() => events.some(mine) && events.some((event) => event.data.id === reply1.id), 10_000, "the skipped events");
    assert.equal(events.filter(mine).length, 1);
    client.close();
  } finally {
    delete (/** @type {any} */ (globalThis).document);
  }
});

test("unsubscribe stops the events of that channel", { skip, timeout: 30_000 }, async () => {
  const user = makeUser();
  const { client } = newClient({ token: user.token() });
  clients.push(client);
  /** @type {any[]} */
  const events = [];
  const sub = client.subscribe("feed", (event) => events.push(event));
  /** @type {any[]} */
  const witness = [];
  const other = newClient({});
  clients.push(other.client);
  const witnessSub = other.client.subscribe("feed", (event) => witness.push(event));
  client.connect();
  other.client.connect();
  await Promise.all([sub.ready, witnessSub.ready]);
  sub.unsubscribe();
  const post = await createPost(user.token(), "nobody listens");
  await waitFor(() => witness.some((event) => event.data.id === post.id), 10_000, "the witness to get it");
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(events.filter((event) => event.data.id === post.id).length, 0);
});

test("a server that never answers the handshake: give up after connectTimeoutMs, retry; close() while connecting", { skip, timeout: 30_000 }, async () => {
  // Accepts TCP connections and never says a word.
  const silent = net.createServer(() => {});
  await new Promise((resolve) => silent.listen(0, "127.0.0.1", () => resolve(undefined)));
  const { port } = /** @type {net.AddressInfo} */ (silent.address());
  try {
    const { client, states } = newClient({
      url: `ws://127.0.0.1:${port}/ws`,
      connectTimeoutMs: 300,
      backoff: { baseMs: 50, capMs: 100 },
    });
    client.connect();
    await waitFor(() => states.filter((change) => change.state === "reconnecting").length >= 3, 15_000, "three retries");
    client.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(client.state, "closed");
    const second = newClient({ url: `ws://127.0.0.1:${port}/ws` });
    second.client.connect();
    second.client.close(); // while the handshake is in flight
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(second.client.state, "closed");
  } finally {
    silent.close();
  }
});
