// What to do when a connection ends: the close-code policy of the client as a
// pure function of what happened. The I/O layer (client.js) gathers the facts
// (close code, whether the socket ever opened, what an HTTP check of the token
// said) and carries out the decision.

/** Close codes the gateway sends (docs/websocket-protocol.md). */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  RESTART: 1012,
  TRY_AGAIN: 1013,
  TOO_SLOW: 4008,
  TOKEN_EXPIRED: 4401,
});

/**
 * Why a handshake failed, as far as the client can tell:
 * - `unauthorized`: the gateway answered 401 (bad, expired or forged token);
 * - `other`: anything known not to be about the token (another status, or a
 *   reachable gateway that accepted the token when checked over HTTP);
 * - `unknown`: no way to tell (a browser reports every refused handshake as a
 *   bare close 1006 before `open`, and the HTTP check could not be read).
 *
 * @typedef {"unauthorized" | "other" | "unknown"} RefusalCause
 */

/**
 * @typedef {object} CloseFacts
 * @property {boolean} opened whether the websocket opened before it closed
 * @property {number} code the close code (1006 when there was no close frame)
 * @property {RefusalCause | undefined} [refusal] for a socket that never opened (undefined: not checked)
 * @property {boolean} signedIn whether the connection carries a token
 * @property {boolean} hasProvider whether a token provider can give a new token
 * @property {boolean} askedAfterRefusal the provider was already asked once since the last successful connection
 * @property {number} unexplained consecutive handshake failures of unknown cause (this one included)
 * @property {number} maxUnexplained after this many, the provider is asked once; after twice this many, stop
 */

/**
 * @typedef {object} Reconnect
 * @property {"reconnect"} action
 * @property {"backoff" | "restart" | "now"} delay backoff: exponential with full
 *   jitter; restart: random within the restart window; now: at once
 * @property {boolean} freshToken ask the provider for a new token first
 * @property {string} reason
 *
 * @typedef {object} Unauthorized
 * @property {"unauthorized"} action
 * @property {string} reason
 *
 * @typedef {Reconnect | Unauthorized} CloseDecision
 */

/**
 * @param {Reconnect["delay"]} delay
 * @param {boolean} freshToken
 * @param {string} reason
 * @returns {Reconnect}
 */
function reconnect(delay, freshToken, reason) {
  return { action: "reconnect", delay, freshToken, reason };
}

/**
 * The decision after a connection ended (or never opened).
 *
 * Guarantees: a token that the gateway refused (401 at the handshake, 4401
 * after it) leads to at most one more handshake with a token fresh from the
 * provider, then to `unauthorized`; without a provider, straight to
 * `unauthorized`. A guest is never `unauthorized`. Everything else
 * reconnects: the gateway's own restarts (1012, 1001) within the restart
 * window, anything else with exponential backoff.
 *
 * @param {CloseFacts} facts
 * @returns {CloseDecision}
 */
export function decideAfterClose(facts) {
  if (!facts.opened) return decideAfterRefusal(facts);
  switch (facts.code) {
    case CLOSE.TOKEN_EXPIRED:
      return facts.hasProvider
        ? reconnect("now", true, "the token expired (4401); reconnecting with a new one")
        : { action: "unauthorized", reason: "the token expired (4401) and there is no token provider" };
    case CLOSE.RESTART:
    case CLOSE.GOING_AWAY:
      return reconnect("restart", false, `the server is going away (${facts.code}); reconnecting`);
    case CLOSE.TOO_SLOW:
      return reconnect("backoff", false, "the client fell behind (4008); reconnecting to recover");
    default:
      return reconnect("backoff", false, `the connection closed (${facts.code}); reconnecting`);
  }
}

/**
 * @param {CloseFacts} facts
 * @returns {CloseDecision}
 */
function decideAfterRefusal(facts) {
  if (!facts.signedIn || facts.refusal === "other" || facts.refusal === undefined) {
    return reconnect("backoff", false, "could not connect; retrying");
  }
  if (facts.refusal === "unauthorized") {
    if (facts.hasProvider && !facts.askedAfterRefusal) {
      return reconnect("now", true, "the token was refused (401); asking for a new one");
    }
    return {
      action: "unauthorized",
      reason: facts.hasProvider
        ? "the token was refused (401) again after asking the provider for a new one"
        : "the token was refused (401)",
    };
  }
  // Unknown cause: a refused token and an unreachable gateway look the same.
  if (facts.unexplained >= 2 * facts.maxUnexplained) {
    return {
      action: "unauthorized",
      reason: `${facts.unexplained} handshakes in a row failed before opening; the token is probably refused`,
    };
  }
  if (facts.unexplained >= facts.maxUnexplained && facts.hasProvider && !facts.askedAfterRefusal) {
    return reconnect("backoff", true, "handshakes keep failing; trying a new token");
  }
  return reconnect("backoff", false, "could not connect; retrying");
}
