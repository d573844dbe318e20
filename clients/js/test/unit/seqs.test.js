import assert from "node:assert/strict";
import { test } from "node:test";

import { SeqBook } from "../../src/index.js";

test("a first subscription without since goes live after the answered seq", () => {
  const book = new SeqBook();
  book.track("feed");
  assert.deepEqual(book.subscribeOp("feed"), { channel: "feed" });
  assert.equal(book.subscribed("feed", 41, false), null, "no since: not a gap");
  assert.equal(book.accept("feed", 41), false);
  assert.equal(book.accept("feed", 42), true);
  assert.equal(book.lastSeq("feed"), 42);
});

test("duplicates and older seqs are dropped; seqs may skip", () => {
  const book = new SeqBook();
  book.track("feed");
  book.subscribeOp("feed");
  book.subscribed("feed", 0, false);
  const delivered = [3, 3, 5, 4, 9, 9, 12].filter((seq) => book.accept("feed", seq));
  assert.deepEqual(delivered, [3, 5, 9, 12]);
});

test("a resubscription asks since the last seq and delivers the replay once", () => {
  const book = new SeqBook();
  book.track("feed");
  book.subscribeOp("feed");
  book.subscribed("feed", 10, false);
  assert.ok(book.accept("feed", 11));
  book.disconnected();
  assert.deepEqual(book.subscribeOp("feed"), { channel: "feed", since: 11 });
  assert.equal(book.subscribed("feed", 15, true), null);
  const delivered = [11, 12, 13, 15, 15, 16].filter((seq) => book.accept("feed", seq));
  assert.deepEqual(delivered, [12, 13, 15, 16]);
});

test("events that arrive while a subscribe with since is in flight are held back", () => {
  // The inbox: the gateway delivers live events right after hello, before the
  // answer to our subscribe with since; the replay brings them again, after
  // the older ones we missed.
  const book = new SeqBook();
  book.track("user:u", 0);
  book.subscribeOp("user:u");
  assert.equal(book.isAwaiting("user:u"), true);
  assert.equal(book.accept("user:u", 7), false, "early live event");
  book.subscribed("user:u", 7, true);
  const delivered = [2, 5, 7, 8].filter((seq) => book.accept("user:u", seq));
  assert.deepEqual(delivered, [2, 5, 7, 8]);
});

test("recovered false reports a gap and goes on from the retained history", () => {
  const book = new SeqBook();
  book.track("feed", 100);
  assert.deepEqual(book.subscribeOp("feed"), { channel: "feed", since: 100 });
  assert.deepEqual(book.subscribed("feed", 250, false), { channel: "feed", since: 100, seq: 250 });
  assert.equal(book.lastSeq("feed"), 100);
  assert.ok(book.accept("feed", 180), "what is retained still arrives");
});

test("a since beyond the channel's latest seq goes on from that seq", () => {
  const book = new SeqBook();
  book.track("feed", 1_000_000);
  book.subscribeOp("feed");
  assert.deepEqual(book.subscribed("feed", 20, false), { channel: "feed", since: 1_000_000, seq: 20 });
  assert.equal(book.lastSeq("feed"), 20);
  assert.ok(book.accept("feed", 21));
});

test("untracked channels deliver nothing; forget stops a channel", () => {
  const book = new SeqBook();
  assert.equal(book.accept("feed", 1), false);
  book.track("feed");
  book.subscribeOp("feed");
  book.subscribed("feed", 0, false);
  book.forget("feed");
  assert.equal(book.accept("feed", 1), false);
  assert.deepEqual(book.channels(), []);
});
