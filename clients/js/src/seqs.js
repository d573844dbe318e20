// Sequence bookkeeping per channel: what makes every event reach the
// application once and in order across reconnects. Pure state, no I/O.
//
// For each channel the book remembers `lastSeq`, the highest seq delivered
// (or accounted for by a `subscribed` answer). An event is delivered only if
// its seq is above `lastSeq`, which drops the duplicates a recovery may send.
//
// While a subscribe carrying `since` is in flight, events of that channel are
// held back: the gateway restarts the channel's subscription when it reads the
// op and replays everything after `since`, so whatever arrives before the
// answer (the inbox, to which the gateway subscribes a user on its own, gets
// live events right after `hello`) arrives again in order in the replay.
// Delivering such an early event would move `lastSeq` past the older events of
// the replay, and they would then be dropped as duplicates.

/**
 * @typedef {object} Gap
 * @property {string} channel
 * @property {number} since the seq the client asked to recover from
 * @property {number} seq the channel's latest seq when the gateway answered
 */

/**
 * @typedef {object} ChannelSeq
 * @property {number | null} lastSeq null until the first `subscribed`
 * @property {number | null | undefined} awaiting the `since` of the subscribe
 *   in flight (null: one without `since`), undefined when none is
 */

export class SeqBook {
  constructor() {
    /** @type {Map<string, ChannelSeq>} @private */
    this._channels = new Map();
  }

  /**
   * Start tracking a channel. `since` (optional) asks for history after that
   * seq on the first subscription (0: from the beginning).
   *
   * @param {string} channel
   * @param {number | null} [since]
   */
  track(channel, since = null) {
    if (!this._channels.has(channel)) {
      this._channels.set(channel, { lastSeq: since, awaiting: undefined });
    }
  }

  /** @param {string} channel */
  forget(channel) {
    this._channels.delete(channel);
  }

  /** @param {string} channel */
  has(channel) {
    return this._channels.has(channel);
  }

  /** @returns {string[]} */
  channels() {
    return [...this._channels.keys()];
  }

  /**
   * @param {string} channel
   * @returns {number | null}
   */
  lastSeq(channel) {
    return this._channels.get(channel)?.lastSeq ?? null;
  }

  /**
   * The fields of the subscribe op to send now (`since` when the channel has a
   * position), and remember that it is in flight.
   *
   * @param {string} channel
   * @returns {{channel: string, since?: number}}
   */
  subscribeOp(channel) {
    const entry = this._channels.get(channel);
    if (entry === undefined) throw new Error(`not tracking ${channel}`);
    entry.awaiting = entry.lastSeq;
    return entry.lastSeq === null ? { channel } : { channel, since: entry.lastSeq };
  }

  /**
   * Whether a subscribe is in flight for the channel.
   *
   * @param {string} channel
   */
  isAwaiting(channel) {
    return this._channels.get(channel)?.awaiting !== undefined;
  }

  /**
   * The gateway answered `subscribed {seq, recovered}`. Returns the gap to
   * report when history did not reach back to the `since` that was asked for.
   * Without `since`, nothing was replayed and nothing is a gap: the channel
   * goes live after `seq`.
   *
   * @param {string} channel
   * @param {number} seq
   * @param {boolean} recovered
   * @returns {Gap | null}
   */
  subscribed(channel, seq, recovered) {
    const entry = this._channels.get(channel);
    if (entry === undefined) return null;
    const since = entry.awaiting;
    entry.awaiting = undefined;
    if (since === null || since === undefined) {
      entry.lastSeq = seq;
      return null;
    }
    // The replay restarts from `since`; a `since` beyond `seq` names a seq the
    // channel never had (its history was reset): go on from `seq`.
    entry.lastSeq = Math.min(since, seq);
    return recovered ? null : { channel, since, seq };
  }

  /**
   * The socket closed: nothing is in flight any more.
   */
  disconnected() {
    for (const entry of this._channels.values()) entry.awaiting = undefined;
  }

  /**
   * Whether an event frame is to be delivered; moves `lastSeq` when it is.
   * False for a channel not tracked, one whose subscribe is in flight (the
   * replay brings the event again), or a seq already delivered.
   *
   * @param {string} channel
   * @param {number} seq
   */
  accept(channel, seq) {
    const entry = this._channels.get(channel);
    if (entry === undefined || entry.awaiting !== undefined) return false;
    if (entry.lastSeq !== null && seq <= entry.lastSeq) return false;
    entry.lastSeq = seq;
    return true;
  }
}
