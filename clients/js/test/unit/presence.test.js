// Presence as pure state: the snapshot, the joined/left diffs, a new snapshot
// replacing everything, counts only for those who may not see names.

import assert from "node:assert/strict";
import { test } from "node:test";

import { PresenceState } from "../../src/index.js";

/** @param {string} id */
const person = (id) => ({ user_id: id, name: `User ${id}`, role: /** @type {const} */ ("student") });

/** @param {object} fields */
const frame = (fields) => ({ op: /** @type {const} */ ("presence"), channel: /** @type {const} */ ("presence"), online: 0, guests: 0, ...fields });

/** @param {PresenceState} state */
const ids = (state) => [...state.members.keys()];

test("the snapshot sets counts and members; diffs add joined and remove left", () => {
  const state = new PresenceState();
  assert.equal(state.ready, false);
  state.resubscribed();
  state.apply(frame({ online: 2, guests: 5, members: [person("a"), person("b")] }));
  assert.equal(state.ready, true);
  assert.equal(state.names, true);
  assert.deepEqual([state.online, state.guests], [2, 5]);
  assert.deepEqual(ids(state), ["a", "b"]);
  assert.equal(state.members.get("a")?.name, "User a");
  state.apply(frame({ online: 3, guests: 4, joined: [person("c"), person("d")], left: [person("a")] }));
  assert.deepEqual([state.online, state.guests], [3, 4]);
  assert.deepEqual(ids(state), ["b", "c", "d"]);
  state.apply(frame({ online: 3, guests: 6, joined: [], left: [] }));
  assert.deepEqual([state.online, state.guests], [3, 6]);
  assert.deepEqual(ids(state), ["b", "c", "d"]);
  // Leaving someone not listed (a snapshot cut at 1,000) is harmless.
  state.apply(frame({ online: 2, guests: 6, left: [person("zz"), person("b")] }));
  assert.deepEqual(ids(state), ["c", "d"]);
});

test("a new snapshot replaces everything (a reconnect is never merged)", () => {
  const state = new PresenceState();
  state.resubscribed();
  state.apply(frame({ online: 2, guests: 1, members: [person("a"), person("b")] }));
  state.disconnected();
  assert.equal(state.ready, false, "not current while reconnecting");
  assert.deepEqual(ids(state), ["a", "b"], "the last known values are kept meanwhile");
  state.resubscribed();
  state.apply(frame({ online: 1, guests: 0, members: [person("c")] }));
  assert.equal(state.ready, true);
  assert.deepEqual(ids(state), ["c"], "a and b left while we were away: they are gone");
  assert.deepEqual([state.online, state.guests], [1, 0]);
});

test("the first frame after subscribed is the snapshot even with an empty list or no list", () => {
  const state = new PresenceState();
  state.resubscribed();
  state.apply(frame({ online: 1, guests: 0, members: [person("a")] }));
  // A refresh that lost membership: the new snapshot has counts only.
  state.resubscribed();
  state.apply(frame({ online: 4, guests: 2 }));
  assert.equal(state.names, false);
  assert.equal(state.members.size, 0);
  assert.deepEqual([state.online, state.guests], [4, 2]);
  // An empty community for a member.
  state.resubscribed();
  state.apply(frame({ online: 0, guests: 0, members: [] }));
  assert.equal(state.names, true);
  assert.equal(state.members.size, 0);
});

test("guests and non-members get counts only: lists in later frames are ignored", () => {
  const state = new PresenceState();
  state.resubscribed();
  state.apply(frame({ online: 7, guests: 3 }));
  assert.equal(state.names, false);
  state.apply(frame({ online: 8, guests: 3, joined: [person("x")] }));
  assert.equal(state.online, 8);
  assert.equal(state.members.size, 0);
});
