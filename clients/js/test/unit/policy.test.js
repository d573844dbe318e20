import assert from "node:assert/strict";
import { test } from "node:test";

import { CLOSE, decideAfterClose } from "../../src/index.js";

/** @param {Partial<import("../../src/policy.js").CloseFacts>} facts */
function decide(facts) {
  return decideAfterClose({
    opened: true,
    code: CLOSE.ABNORMAL,
    signedIn: true,
    hasProvider: true,
    askedAfterRefusal: false,
    unexplained: 0,
    maxUnexplained: 3,
    ...facts,
  });
}

test("4401: a fresh token, then reconnect at once", () => {
  assert.deepEqual(
    { ...decide({ code: 4401 }), reason: "" },
    { action: "reconnect", delay: "now", freshToken: true, reason: "" },
  );
});

test("4401 without a provider: unauthorized", () => {
  assert.equal(decide({ code: 4401, hasProvider: false }).action, "unauthorized");
});

test("1012 and 1001: reconnect within the restart window, same token", () => {
  for (const code of [1012, 1001]) {
    const decision = decide({ code });
    assert.equal(decision.action, "reconnect");
    assert.equal(decision.action === "reconnect" && decision.delay, "restart");
    assert.equal(decision.action === "reconnect" && decision.freshToken, false);
  }
});

test("4008 and other codes after open: backoff", () => {
  for (const code of [4008, 1006, 1011, 1013, 1000, 1009]) {
    const decision = decide({ code });
    assert.equal(decision.action === "reconnect" && decision.delay, "backoff", String(code));
  }
});

test("a 401 at the handshake: ask the provider once, then unauthorized", () => {
  const first = decide({ opened: false, refusal: "unauthorized" });
  assert.equal(first.action === "reconnect" && first.freshToken, true);
  assert.equal(first.action === "reconnect" && first.delay, "now");
  const second = decide({ opened: false, refusal: "unauthorized", askedAfterRefusal: true });
  assert.equal(second.action, "unauthorized");
});

test("a 401 without a provider: unauthorized at once", () => {
  assert.equal(decide({ opened: false, refusal: "unauthorized", hasProvider: false }).action, "unauthorized");
});

test("a failure known not to be about the token backs off forever", () => {
  for (let unexplained = 0; unexplained < 20; unexplained += 1) {
    const decision = decide({ opened: false, refusal: "other", unexplained, askedAfterRefusal: true });
    assert.equal(decision.action === "reconnect" && decision.delay, "backoff");
  }
});

test("a guest is never unauthorized", () => {
  const decision = decide({ opened: false, signedIn: false, refusal: "unknown", unexplained: 100 });
  assert.equal(decision.action, "reconnect");
});

test("unexplained failures: a new token after N, unauthorized after 2N", () => {
  assert.equal(decide({ opened: false, refusal: "unknown", unexplained: 2 }).action, "reconnect");
  const third = decide({ opened: false, refusal: "unknown", unexplained: 3 });
  assert.equal(third.action === "reconnect" && third.freshToken, true);
  const fifth = decide({ opened: false, refusal: "unknown", unexplained: 5, askedAfterRefusal: true });
  assert.equal(fifth.action === "reconnect" && fifth.freshToken, false);
  assert.equal(decide({ opened: false, refusal: "unknown", unexplained: 6, askedAfterRefusal: true }).action, "unauthorized");
  assert.equal(decide({ opened: false, refusal: "unknown", unexplained: 6, hasProvider: false }).action, "unauthorized");
});
