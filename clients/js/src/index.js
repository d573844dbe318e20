// @community-live/client: the websocket client of Community Live (SPEC §13).
// No runtime dependency; browsers and Node.js 20+ (pass `WebSocket` from the
// `ws` package on Node 20, which has no global one).

export { CommunityClient, Inbox } from "./client.js";
export { backoffDelay, restartDelay, DEFAULT_BACKOFF } from "./backoff.js";
export { CLOSE, decideAfterClose } from "./policy.js";
export { SeqBook } from "./seqs.js";
export { InboxState } from "./inbox.js";
export { Presence, PresenceState } from "./presence.js";
export { decodeJwtPayload, tokenExpiry, refreshDelay } from "./token.js";

/**
 * @template [T=unknown]
 * @typedef {import("./client.js").ChannelEvent<T>} ChannelEvent
 */
/** @typedef {import("./client.js").ClientOptions} ClientOptions */
/** @typedef {import("./client.js").ConnectionState} ConnectionState */
/** @typedef {import("./client.js").StateChange} StateChange */
/** @typedef {import("./client.js").SubscribeOptions} SubscribeOptions */
/** @typedef {import("./client.js").SubscribeResult} SubscribeResult */
/** @typedef {import("./client.js").Subscription} Subscription */
/** @typedef {import("./client.js").GatewayError} GatewayError */
/** @typedef {import("./client.js").PresenceFrame} PresenceFrame */
/** @typedef {import("./client.js").PresencePerson} PresencePerson */
/** @typedef {import("./client.js").WebSocketLike} WebSocketLike */
/** @typedef {import("./seqs.js").Gap} Gap */
/** @typedef {import("./policy.js").CloseDecision} CloseDecision */
/** @typedef {import("./policy.js").CloseFacts} CloseFacts */

import { CommunityClient } from "./client.js";

/**
 * Create a client and start connecting.
 *
 * @param {import("./client.js").ClientOptions} options
 * @returns {CommunityClient}
 */
export function connect(options) {
  const client = new CommunityClient(options);
  client.connect();
  return client;
}
