// The notification inbox (the `user:<id>` channel) as pure state: its
// history, the read position and the unread count. The client feeds it the
// frames; it does no I/O.
//
// The gateway tells the unread count (`hello.unread`) but not the read
// position itself, so the inbox infers the position from the count: after
// every (re)connection it loads the channel's history, and the read position
// is the seq that leaves `hello.unread` events (plus those that arrived after
// `hello`) above it. The events that arrived after `hello` are those above
// the seq the inbox's `subscribed` names: the gateway names there the seq its
// count covered, so an event routed between the count and the history read
// follows `subscribed` as a live one does. `markRead(seq)` then moves the
// position, and events that arrive above it count as unread.

/**
 * @template [T=unknown]
 * @typedef {import("./client.js").ChannelEvent<T>} ChannelEvent
 */

export class InboxState {
  constructor() {
    /** @type {ChannelEvent[]} oldest first */
    this.items = [];
    /** the highest seq known to be read */
    this.readSeq = 0;
    /** whether the history of the current connection is loaded */
    this.synced = false;
    /** @type {number} @private */
    this._helloUnread = 0;
    /** @type {Set<number>} seqs seen live between `hello` and the end of the history @private */
    this._afterHello = new Set();
    /** @type {number | null} the seq of `subscribed` on this connection @private */
    this._historyEnd = null;
  }

  /** The number of unread events. */
  get unread() {
    let count = 0;
    for (let i = this.items.length - 1; i >= 0 && this.items[i].seq > this.readSeq; i -= 1) {
      count += 1;
    }
    return count;
  }

  /** The newest seq in the inbox (0 when empty). */
  get latestSeq() {
    return this.items.length ? this.items[this.items.length - 1].seq : 0;
  }

  /**
   * A connection said hello: the history is being reloaded.
   *
   * @param {number} unread `hello.unread`
   */
  beginSync(unread) {
    this.synced = false;
    this._helloUnread = unread;
    this._afterHello.clear();
    this._historyEnd = null;
  }

  /**
   * A live event that arrived before the history was answered (it is held
   * back and comes again in the history; it is not part of `hello.unread`).
   *
   * @param {number} seq
   */
  seenEarly(seq) {
    if (!this.synced && seq > this.latestSeq) this._afterHello.add(seq);
  }

  /**
   * `subscribed` of the inbox on this connection.
   *
   * @param {number} seq
   */
  historyAnswered(seq) {
    this._historyEnd = seq;
  }

  /**
   * An event delivered in order (history or live).
   *
   * @param {ChannelEvent} event
   */
  add(event) {
    this.items.push(event);
    if (!this.synced && this._historyEnd !== null && event.seq > this._historyEnd) {
      this._afterHello.add(event.seq);
    }
  }

  /**
   * The whole history of this connection has arrived: infer the read position.
   */
  endSync() {
    if (this.synced) return;
    const unread = this._helloUnread + this._afterHello.size;
    const index = this.items.length - unread - 1;
    const inferred = unread >= this.items.length ? 0 : this.items[index].seq;
    this.readSeq = Math.max(this.readSeq, inferred);
    this.synced = true;
  }

  /**
   * Mark everything up to `seq` as read (what the `read` op does on the server).
   *
   * @param {number} seq
   */
  markRead(seq) {
    this.readSeq = Math.max(this.readSeq, Math.min(seq, this.latestSeq));
  }
}
