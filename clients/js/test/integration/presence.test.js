// Presence against the real gateway (started with a short grace by
// tests/integration/clients/test_js_client.py): a member sees another user
// join and leave, a guest gets counts only, `setVisible(false)` takes a user
// out of the others' lists and `setVisible(true)` brings them back.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { makeUser, newClient, signToken, skip, waitFor } from "./helpers.js";

/** @type {import("../../src/client.js").CommunityClient[]} */
const clients = [];
after(() => clients.forEach((client) => client.close()));

/** A client watching presence: the list of its snapshots and changes. */
function watcher(/** @type {Partial<import("../../src/client.js").ClientOptions>} */ options) {
  const { client } = newClient(options);
  clients.push(client);
  let changes = 0;
  client.presence.onChange(() => (changes += 1));
  client.connect();
  return { client, changes: () => changes };
}

/** @param {{id: string, token: () => string}} user */
function online(user) {
  const { client } = newClient({ token: user.token() });
  clients.push(client);
  client.connect();
  return client;
}

test("a member sees another user join, then leave after they close", { skip, timeout: 40_000 }, async () => {
  const { client } = watcher({ token: makeUser().token() });
  await waitFor(() => client.presence.ready, 10_000, "the snapshot");
  assert.equal(client.presence.names, true);
  const other = makeUser("instructor");
  const started = Date.now();
  const otherClient = online(other);
  await waitFor(() => client.presence.members.has(other.id), 5_000, "the other user in members");
  const joinedAfter = Date.now() - started;
  assert.equal(client.presence.members.get(other.id)?.role, "instructor");
  assert.ok(client.presence.online >= 2, `online ${client.presence.online}`);
  otherClient.close();
  const closed = Date.now();
  await waitFor(() => !client.presence.members.has(other.id), 15_000, "the other user to leave");
  console.log(`# joined seen after ${joinedAfter} ms; left seen ${Date.now() - closed} ms after close (short grace)`);
});

test("a guest and a non-member get counts, no names", { skip, timeout: 30_000 }, async () => {
  const guest = watcher({});
  const nonMember = watcher({ token: signToken({ member: false }) });
  const user = makeUser();
  online(user);
  await waitFor(() => guest.client.presence.ready && nonMember.client.presence.ready, 10_000, "the snapshots");
  for (const { client } of [guest, nonMember]) {
    assert.equal(client.presence.names, false);
    assert.equal(client.presence.members.size, 0);
  }
  // The guest counts itself among the guests; the count follows a new user.
  await waitFor(() => guest.client.presence.guests >= 1 && guest.client.presence.online >= 1, 5_000, "counts");
  const before = guest.client.presence.online;
  online(makeUser());
  await waitFor(() => guest.client.presence.online > before, 5_000, "online to grow");
  assert.equal(guest.client.presence.members.size, 0);
  await assert.rejects(guest.client.setVisible(false), (/** @type {any} */ error) => error.code === "forbidden");
});

test("setVisible(false) takes the user out of another client's members; true brings them back", { skip, timeout: 30_000 }, async () => {
  const { client } = watcher({ token: makeUser().token() });
  const shy = makeUser();
  const shyClient = online(shy);
  await waitFor(() => client.presence.members.has(shy.id), 5_000, "the user listed");
  await shyClient.setVisible(false);
  await waitFor(() => !client.presence.members.has(shy.id), 5_000, "the hidden user gone");
  await shyClient.setVisible(true);
  await waitFor(() => client.presence.members.has(shy.id), 5_000, "the user listed again");
});

test("after a reconnect the snapshot replaces what was known", { skip, timeout: 40_000 }, async () => {
  const { client } = watcher({ token: makeUser().token() });
  const witness = watcher({ token: makeUser().token() }).client;
  const other = makeUser();
  const otherClient = online(other);
  await waitFor(() => client.presence.members.has(other.id) && witness.presence.members.has(other.id), 5_000, "the other user listed");
  client.close();
  otherClient.close();
  // The other user leaves while this client is away (the witness stays connected to see it).
  await waitFor(() => !witness.presence.members.has(other.id), 15_000, "the other user to leave");
  assert.equal(client.presence.members.has(other.id), true, "the last known list, kept while away");
  client.connect();
  await waitFor(() => client.presence.ready, 10_000, "the new snapshot");
  assert.equal(client.presence.members.has(other.id), false, "gone while away: not kept from before");
});
