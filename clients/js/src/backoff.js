// Reconnect delays: exponential backoff with full jitter, and the spread of a
// restart. Pure functions of their arguments (the random source is passed in).

/**
 * @typedef {object} BackoffOptions
 * @property {number} [baseMs] the first ceiling (default 500 ms)
 * @property {number} [capMs] the largest ceiling (default 30 000 ms)
 */

export const DEFAULT_BACKOFF = Object.freeze({ baseMs: 500, capMs: 30_000 });

/**
 * The delay before reconnect attempt number `attempt` (0 for the first retry):
 * a uniformly random value in [0, min(cap, base * 2^attempt)) — "full jitter".
 * Full jitter spreads the clients that lost the same server over the whole
 * interval instead of bunching them around one delay.
 *
 * @param {number} attempt consecutive failed attempts so far (0-based)
 * @param {BackoffOptions} [options]
 * @param {() => number} [random] a source of numbers in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const base = options.baseMs ?? DEFAULT_BACKOFF.baseMs;
  const cap = options.capMs ?? DEFAULT_BACKOFF.capMs;
  // 2 ** 31 is far beyond any cap; clamping keeps the ceiling finite for huge attempts.
  const ceiling = Math.min(cap, base * 2 ** Math.min(Math.max(0, attempt), 31));
  return Math.floor(random() * ceiling);
}

/**
 * The delay before reconnecting after the server announced it is going away
 * (1012 restart, 1001 going away): uniformly random in [0, windowMs), so that
 * the clients of a stopping instance arrive at the others spread over the
 * window rather than all at once.
 *
 * @param {number} windowMs
 * @param {() => number} [random]
 * @returns {number}
 */
export function restartDelay(windowMs, random = Math.random) {
  return Math.floor(random() * Math.max(0, windowMs));
}
