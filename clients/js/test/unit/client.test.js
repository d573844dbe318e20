// The client's I/O layer driven by a scripted socket (no network): what it
// sends after each close code. The real gateway is exercised by the
// integration tests; this covers the codes a test cannot easily provoke there
// (4008, 1001) and the order of the ops after `hello`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { CommunityClient } from "../../src/index.js";

/** A WebSocket stand-in: records what the client sends; the test plays the gateway. */
class ScriptedSocket {
  /** @type {ScriptedSocket[]} */
  static opened = [];

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} */
    this.sent = [];
    /** @type {((event: any) => void) | null} */
    this.onopen = null;
    /** @type {((event: any) => void) | null} */
    this.onmessage = null;
    /** @type {((event: any) => void) | null} */
    this.onclose = null;
    /** @type {((event: any) => void) | null} */
    this.onerror = null;
    ScriptedSocket.opened.push(this);
  }

  /** @param {string} data */
  send(data) {
    this.sent.push(JSON.parse(data));
  }

  close() {}

  /** @param {object} frame */
  receive(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** @param {number} code */
  closeWith(code) {
    this.onclose?.({ code, reason: "" });
  }

  /** @param {object} hello */
  open(hello) {
    this.readyState = 1;
    this.onopen?.({});
    this.receive({ op: "hello", channels: [], unread: 0, ...hello });
  }

  /** @param {string} op */
  ops(op) {
    return this.sent.filter((frame) => frame.op === op);
  }
}

/** @param {number} ms */
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {Partial<import("../../src/client.js").ClientOptions>} [options] */
function scriptedClient(options = {}) {
  ScriptedSocket.opened = [];
  const client = new CommunityClient({
    url: "ws://gateway.test/ws",
    WebSocket: /** @type {any} */ (ScriptedSocket),
    random: () => 0,
    visibility: false,
    checkToken: false,
    onError: () => {},
    ...options,
  });
  return client;
}

test("4008: reconnect and resubscribe with since = the last seq delivered", async () => {
  const client = scriptedClient();
  /** @type {number[]} */
  const seqs = [];
  client.subscribe("feed", (event) => seqs.push(event.seq));
  client.connect();
  const first = ScriptedSocket.opened[0];
  first.open({ user_id: null, role: "guest" });
  const [subscribe] = first.ops("subscribe");
  assert.deepEqual({ ...subscribe, id: undefined }, { op: "subscribe", channel: "feed", id: undefined });
  first.receive({ op: "subscribed", channel: "feed", seq: 10, recovered: false, id: subscribe.id });
  for (const seq of [11, 12, 12, 14]) first.receive({ op: "event", channel: "feed", seq, type: "post.created", data: {}, ts: "" });
  first.closeWith(4008);
  assert.equal(client.state, "reconnecting");
  await tick(5);
  const second = ScriptedSocket.opened[1];
  assert.ok(second, "reconnected");
  second.open({ user_id: null, role: "guest" });
  const [again] = second.ops("subscribe");
  assert.equal(again.since, 14);
  second.receive({ op: "subscribed", channel: "feed", seq: 16, recovered: true, id: again.id });
  for (const seq of [13, 14, 15, 16, 17]) second.receive({ op: "event", channel: "feed", seq, type: "post.created", data: {}, ts: "" });
  assert.deepEqual(seqs, [11, 12, 14, 15, 16, 17]);
  client.close();
});

test("1001: reconnect within the restart window with the same token; 4401: ask the provider first", async () => {
  let calls = 0;
  const client = scriptedClient({
    getToken: async () => `token-${++calls}`,
    random: () => 0.5,
    restartWindowMs: 40,
  });
  /** @type {any[]} */
  const changes = [];
  client.onState((change) => changes.push(change));
  client.connect();
  await tick();
  const first = ScriptedSocket.opened[0];
  assert.match(first.url, /token=token-1/);
  first.open({ user_id: "u", role: "student" });
  first.closeWith(1001);
  assert.equal(changes.at(-1).retryInMs, 20);
  await tick(30);
  const second = ScriptedSocket.opened[1];
  assert.match(second.url, /token=token-1/, "same token after a restart");
  second.open({ user_id: "u", role: "student" });
  second.closeWith(4401);
  assert.equal(changes.at(-1).retryInMs, 0);
  await tick(5);
  const third = ScriptedSocket.opened[2];
  assert.match(third.url, /token=token-2/, "a fresh token after 4401");
  assert.equal(calls, 2);
  client.close();
  assert.equal(client.state, "closed");
});

test("after hello: mode first when hidden, then the subscriptions, then the inbox and its ping", async () => {
  const client = scriptedClient({ token: "t" });
  client.setMode("background");
  client.subscribe("feed", () => {});
  client.connect();
  const socket = ScriptedSocket.opened[0];
  socket.open({ user_id: "U1", role: "student", unread: 1 });
  assert.deepEqual(
    socket.sent.map((frame) => [frame.op, frame.channel ?? frame.mode, frame.since]),
    [
      ["mode", "background", undefined],
      ["subscribe", "feed", undefined],
      ["subscribe", "user:U1", 0],
      ["ping", undefined, undefined],
    ],
  );
  client.close();
});

/** @param {string} id */
const person = (id) => ({ user_id: id, name: `User ${id}`, role: "student" });

test("presence: subscribed on the first listener, a fresh snapshot after a reconnect, unsubscribed after the last", async () => {
  const client = scriptedClient();
  /** @type {string[][]} */
  const seen = [];
  const stop = client.presence.onChange(() => seen.push([...client.presence.members.keys()]));
  assert.throws(() => client.subscribe("presence", () => {}), TypeError);
  client.connect();
  const first = ScriptedSocket.opened[0];
  first.open({ user_id: "u", role: "student" });
  const subscribe = first.ops("subscribe").find((op) => op.channel === "presence");
  assert.deepEqual({ ...subscribe, id: undefined }, { op: "subscribe", channel: "presence", id: undefined });
  first.receive({ op: "subscribed", channel: "presence", seq: 0, recovered: false, id: subscribe.id });
  first.receive({ op: "presence", channel: "presence", online: 2, guests: 1, members: [person("a"), person("b")] });
  first.receive({ op: "presence", channel: "presence", online: 2, guests: 1, joined: [person("c")], left: [person("a")] });
  assert.deepEqual(seen, [["a", "b"], ["b", "c"]]);
  assert.equal(client.presence.ready, true);
  first.closeWith(1006);
  assert.equal(client.presence.ready, false);
  await tick(5);
  const second = ScriptedSocket.opened[1];
  second.open({ user_id: "u", role: "student" });
  const again = second.ops("subscribe").find((op) => op.channel === "presence");
  assert.ok(again, "presence resubscribed after the reconnect");
  second.receive({ op: "subscribed", channel: "presence", seq: 0, recovered: false, id: again.id });
  second.receive({ op: "presence", channel: "presence", online: 1, guests: 0, members: [person("d")] });
  assert.deepEqual(seen.at(-1), ["d"], "replaced, not merged");
  assert.equal(client.presence.online, 1);
  stop();
  assert.deepEqual(second.ops("unsubscribe").map((op) => op.channel), ["presence"]);
  client.close();
});

test("setVisible sends visibility and settles with the answer; a lost connection rejects it", async () => {
  const client = scriptedClient();
  await assert.rejects(client.setVisible(false), /not connected/);
  client.connect();
  const socket = ScriptedSocket.opened[0];
  socket.open({ user_id: "u", role: "student" });
  const hidden = client.setVisible(false);
  const [op] = socket.ops("visibility");
  assert.equal(op.visible, false);
  socket.receive({ op: "ok", id: op.id });
  await hidden;
  const refused = client.setVisible(true);
  socket.receive({ op: "error", code: "forbidden", message: "guests have no presence to hide", id: socket.ops("visibility")[1].id });
  await assert.rejects(refused, (/** @type {any} */ error) => error.code === "forbidden");
  const lost = client.setVisible(true);
  socket.closeWith(1006);
  await assert.rejects(lost, (/** @type {any} */ error) => error.code === "unavailable");
  client.close();
});
