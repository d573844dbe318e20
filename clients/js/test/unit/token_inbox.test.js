import assert from "node:assert/strict";
import { test } from "node:test";

import { InboxState, decodeJwtPayload, refreshDelay, tokenExpiry } from "../../src/index.js";

/** @param {object} payload */
function jwt(payload) {
  const part = (/** @type {object} */ value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}.signature`;
}

test("the payload of a JWT is read without verifying it", () => {
  assert.deepEqual(decodeJwtPayload(jwt({ sub: "x", name: "Zoë", exp: 10 })), { sub: "x", name: "Zoë", exp: 10 });
  assert.equal(tokenExpiry(jwt({ exp: 10 })), 10_000);
  assert.equal(tokenExpiry(jwt({ sub: "x" })), null);
  for (const garbage of ["", "abc", "a.b.c", "a.bnVsbA.c", `a.${Buffer.from("[1]").toString("base64url")}.c`]) {
    assert.equal(decodeJwtPayload(garbage), null, garbage);
  }
});

test("refresh a minute before expiry, or at 3/4 of a short life", () => {
  assert.equal(refreshDelay(3_600_000, 0), 3_540_000);
  assert.equal(refreshDelay(4000, 0), 3000);
  assert.equal(refreshDelay(1000, 2000), 0);
});

/** @param {number} seq */
const event = (seq) => ({ channel: "user:u", seq, type: "reply.received", data: {}, ts: "" });

test("the read position is inferred from hello.unread after the history", () => {
  const inbox = new InboxState();
  inbox.beginSync(2);
  inbox.historyAnswered(9);
  for (const seq of [1, 4, 6, 9]) inbox.add(event(seq));
  inbox.endSync();
  assert.equal(inbox.readSeq, 4);
  assert.equal(inbox.unread, 2);
  inbox.add(event(12));
  assert.equal(inbox.unread, 3);
  inbox.markRead(9);
  assert.equal(inbox.unread, 1);
  inbox.markRead(100);
  assert.equal(inbox.readSeq, 12, "clamped to the newest");
  assert.equal(inbox.unread, 0);
});

test("events after hello count as unread on top of hello.unread", () => {
  const inbox = new InboxState();
  inbox.beginSync(1);
  inbox.seenEarly(9); // live, before the history's answer
  inbox.historyAnswered(9);
  for (const seq of [1, 4, 6, 9]) inbox.add(event(seq));
  inbox.add(event(11)); // live, after the history, before it ended
  inbox.endSync();
  assert.equal(inbox.unread, 3);
  assert.equal(inbox.readSeq, 4);
});

test("history events above the seq named by subscribed came after hello: unread", () => {
  // hello counted 2 unread up to seq 6; seq 9 reached the inbox before the history
  // was read, so the gateway names 6 in `subscribed` and 9 follows it.
  const inbox = new InboxState();
  inbox.beginSync(2);
  inbox.historyAnswered(6);
  for (const seq of [1, 4, 6, 9]) inbox.add(event(seq));
  inbox.endSync();
  assert.equal(inbox.readSeq, 1);
  assert.equal(inbox.unread, 3);
});

test("a reconnect keeps the items and never moves the read position back", () => {
  const inbox = new InboxState();
  inbox.beginSync(0);
  inbox.historyAnswered(2);
  for (const seq of [1, 2]) inbox.add(event(seq));
  inbox.endSync();
  assert.equal(inbox.unread, 0);
  inbox.beginSync(5); // the server counts more than we have: never go below what we know
  inbox.historyAnswered(3);
  inbox.add(event(3));
  inbox.endSync();
  assert.equal(inbox.readSeq, 2);
  assert.equal(inbox.unread, 1);
  assert.equal(inbox.items.length, 3);
});
