// Presence (SPEC §11) as pure state: who is online, kept current from the
// gateway's `presence` frames. The client feeds it the frames; it does no I/O.
//
// After each `subscribed` answer for `presence` (every connection, and after a
// token refresh) the next frame is a snapshot: it replaces everything (a
// reconnect's snapshot is never merged with what was known before). The frames
// after it carry the counts and, for those who may see names, the users who
// `joined` and `left` since the previous frame (net lists: nobody is in both).
// Guests and non-members get counts only: no `members`, `joined` or `left`.

/** @typedef {import("./generated/events.js").PresenceFrame} PresenceFrame */
/** @typedef {import("./generated/events.js").PresencePerson} PresencePerson */

export class PresenceState {
  constructor() {
    /** visible signed-in users online */
    this.online = 0;
    /** open guest connections */
    this.guests = 0;
    /** @type {Map<string, PresencePerson>} the listed users by `user_id` (empty when `names` is false) */
    this.members = new Map();
    /** whether this user is shown names (a signed-in member); false: counts only */
    this.names = false;
    /** whether the snapshot of the current subscription has arrived */
    this.ready = false;
    /** @private */
    this._expectSnapshot = true;
  }

  /** A `subscribed` answer for `presence`: the next frame is a snapshot. */
  resubscribed() {
    this._expectSnapshot = true;
  }

  /** The connection is gone: the values are kept but no longer current. */
  disconnected() {
    this.ready = false;
    this._expectSnapshot = true;
  }

  /**
   * Apply a `presence` frame: a snapshot replaces, a later frame updates.
   *
   * @param {PresenceFrame} frame
   */
  apply(frame) {
    this.online = frame.online;
    this.guests = frame.guests;
    if (this._expectSnapshot || Array.isArray(frame.members)) {
      this._expectSnapshot = false;
      this.ready = true;
      this.names = Array.isArray(frame.members);
      this.members = new Map((frame.members ?? []).map((person) => [person.user_id, person]));
      return;
    }
    if (!this.names) return;
    for (const person of frame.left ?? []) this.members.delete(person.user_id);
    for (const person of frame.joined ?? []) this.members.set(person.user_id, person);
  }
}

/**
 * What a `Presence` may do with its client.
 *
 * @typedef {object} PresencePort
 * @property {() => PresenceState} state
 * @property {(listener: () => void) => () => void} listen
 */

/**
 * Who is online in the community, kept current while at least one listener
 * is registered with `onChange` (the client subscribes to `presence` then, and
 * unsubscribes when the last one stops).
 */
export class Presence {
  /** @param {PresencePort} port */
  constructor(port) {
    /** @private */
    this._port = port;
  }

  /** Visible signed-in users online (people hidden with `setVisible(false)` are not counted). */
  get online() {
    return this._port.state().online;
  }

  /** Open guest connections. */
  get guests() {
    return this._port.state().guests;
  }

  /**
   * The listed users by `user_id` (`{user_id, name, role}`), in the order they
   * came. Empty unless `names`. A snapshot lists at most 1,000 people:
   * `members.size < online` means the list was cut.
   *
   * @returns {ReadonlyMap<string, PresencePerson>}
   */
  get members() {
    return this._port.state().members;
  }

  /** Whether this user sees names (signed-in members); guests and non-members get counts only. */
  get names() {
    return this._port.state().names;
  }

  /** Whether the current connection's snapshot has arrived (false while reconnecting: the values are the last known). */
  get ready() {
    return this._port.state().ready;
  }

  /**
   * Call `listener` after every snapshot and every change; returns a function
   * that stops it. The first listener subscribes to `presence`, the last one
   * to stop unsubscribes.
   *
   * @param {() => void} listener
   * @returns {() => void}
   */
  onChange(listener) {
    return this._port.listen(listener);
  }
}
