import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay, restartDelay } from "../../src/index.js";

test("full jitter: the delay lies in [0, min(cap, base * 2^attempt))", () => {
  const options = { baseMs: 100, capMs: 5000 };
  for (let attempt = 0; attempt < 12; attempt += 1) {
    const ceiling = Math.min(5000, 100 * 2 ** attempt);
    assert.equal(backoffDelay(attempt, options, () => 0), 0);
    assert.equal(backoffDelay(attempt, options, () => 0.999999), ceiling - 1);
    for (let i = 0; i < 200; i += 1) {
      const delay = backoffDelay(attempt, options);
      assert.ok(delay >= 0 && delay < ceiling, `${delay} outside [0, ${ceiling})`);
    }
  }
});

test("the ceiling is capped even for huge attempts", () => {
  assert.equal(backoffDelay(10_000, { baseMs: 500, capMs: 30_000 }, () => 0.5), 15_000);
  assert.equal(backoffDelay(-3, { baseMs: 500, capMs: 30_000 }, () => 0.5), 250);
});

test("defaults: 500 ms doubling up to 30 s", () => {
  assert.equal(backoffDelay(0, {}, () => 0.5), 250);
  assert.equal(backoffDelay(20, undefined, () => 0.5), 15_000);
});

test("full jitter spreads delays uniformly over the interval", () => {
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i += 1) {
    buckets[Math.floor(backoffDelay(3, { baseMs: 1000, capMs: 100_000 }) / 800)] += 1;
  }
  for (const count of buckets) assert.ok(count > 800 && count < 1200, `uneven: ${buckets}`);
});

test("a restart delay lies within the window", () => {
  assert.equal(restartDelay(3000, () => 0), 0);
  assert.equal(restartDelay(3000, () => 0.5), 1500);
  assert.equal(restartDelay(0, () => 0.7), 0);
  for (let i = 0; i < 100; i += 1) {
    const delay = restartDelay(2000);
    assert.ok(delay >= 0 && delay < 2000);
  }
});
