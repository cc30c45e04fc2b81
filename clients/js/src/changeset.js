// A ChangeSet: the fragments of one ScopeSync sent by this client, with what
// is needed to undo them when the server rejects them.

import {JetstreamError} from './errors.js';

// Outcome of a changeset (docs/protocol.md#client-replies).
export const ChangeSetStatus = Object.freeze({
  PENDING: 'pending',
  COMPLETED: 'completed',
  PARTIALLY_REVERTED: 'partially-reverted',
  REVERTED: 'reverted',
  // No reply will come: the session was replaced (4096/4097) or a fresh
  // ScopeState superseded the changeset.
  LOST: 'lost',
});

export class ChangeSet {
  // `parts[i]` describes `fragments[i]`: {type, object, originals} where
  // originals maps each changed key to its value before the change (for
  // "add" parts it is null: the whole object is new).
  constructor(fragments, parts, atomic) {
    this.fragments = fragments;
    this.parts = parts;
    this.atomic = Boolean(atomic);
    this.status = ChangeSetStatus.PENDING;
    this.index = null;  // the ScopeSync message index once sent
    this.promise = new Promise((resolve) => {
      this._resolve = resolve;
    });
  }

  get size() {
    return this.fragments.length;
  }

  // Whether this changeset sets `key` of `object`; returns a function that
  // moves an older original value into it (a rebase), or null.
  touch(object, key) {
    for (const part of this.parts) {
      if (part.object !== object) continue;
      if (part.type === 'add') return () => {};
      if (part.originals.has(key)) return (value) => part.originals.set(key, value);
    }
    return null;
  }

  // Which fragments the reply rejects. A reply that is not a ScopeSyncReply
  // or has a different number of entries rejects all of them (docs/protocol.md#client-replies).
  static readReply(changeSet, reply) {
    const n = changeSet.fragments.length;
    const replies =
      reply && reply.type === 'ScopeSyncReply' && Array.isArray(reply.fragmentReplies)
        ? reply.fragmentReplies
        : null;
    const errors = new Map();
    const modifications = new Map();
    if (replies === null || replies.length !== n) {
      const why =
        replies === null
          ? `Expected a ScopeSyncReply, got ${reply && reply.type}`
          : `The reply has ${replies.length} fragment replies for ${n} fragments`;
      for (let i = 0; i < n; i++) errors.set(i, new JetstreamError(why, 'reply-mismatch'));
      return {errors, modifications};
    }
    replies.forEach((entry, i) => {
      if (entry && typeof entry === 'object' && entry.error) {
        errors.set(i, JetstreamError.fromWire(entry.error));
      } else if (entry && entry.modifications && typeof entry.modifications === 'object') {
        modifications.set(i, entry.modifications);
      }
    });
    return {errors, modifications};
  }

  _finish(status, errors = []) {
    if (this.status !== ChangeSetStatus.PENDING) return;
    this.status = status;
    this._resolve({status, changeSet: this, errors});
  }
}
