// A Scope: the live tree of model objects of one fetched scope.
//
// Local changes to objects in the scope are collected per object and sent as
// one ScopeSync about every `changeInterval` ms
// (docs/protocol.md#client-batching). Objects join the
// scope when a scoped object refers to them and leave it when they have lost
// their last parent in the scope, at the end of a change batch (docs/protocol.md#orphans), so
// moving an object within one batch keeps it.
//
// Events (besides the objects' 'change' / 'attach' / 'detach', repeated here):
//   'state'   {scope}                       a ScopeState was applied
//   'sync'    {scope, fragments}            a ScopeSync from the server was applied
//   'revert'  {scope, changeSet, errors}    the server rejected local changes;
//                                            errors: [{index, fragment, error}]
//   'error'   JetstreamError                 e.g. a failed re-fetch

import {Emitter} from './emitter.js';
import {ChangeSet, ChangeSetStatus} from './changeset.js';
import {JetstreamError} from './errors.js';
import {normalizeUUID} from './uuid.js';

export class Scope extends Emitter {
  constructor(client, name, params, options = {}) {
    super();
    this.client = client;
    this.name = name;
    this.params = params || {};
    this.schema = options.schema;
    this.changeInterval = options.changeInterval ?? 10;
    this.root = null;
    // The session-local index the server gave this scope; null while the
    // scope is not (or no longer) fetched in the current session.
    this.scopeIndex = null;
    this._objects = new Map();
    this._pending = new Map();
    this._localOrphans = new Set();
    this._remoteOrphans = new Set();
    this._inflight = [];
    this._flushTimer = null;
    this._applying = 0;
    this._queued = [];
    this._stateWaiters = [];
    this._stateCount = 0;
  }

  // ---- reading ----

  get(uuid) {
    const id = normalizeUUID(uuid);
    return id === null ? undefined : this._objects.get(id);
  }

  get objects() {
    return [...this._objects.values()];
  }

  get size() {
    return this._objects.size;
  }

  // Objects of a model (and its submodels).
  objectsOf(clsName) {
    const type = this.schema.model(clsName);
    if (!type) throw new Error(`No such model '${clsName}'`);
    return this.objects.filter((o) => o.type.isA(type));
  }

  // True once a ScopeState has been applied.
  get ready() {
    return this._stateCount > 0;
  }

  get hasPendingChanges() {
    return this._pending.size > 0 || this._localOrphans.size > 0;
  }

  // Changesets sent and not answered yet.
  get inflight() {
    return [...this._inflight];
  }

  // ---- changing ----

  // A new object of this scope's schema, not yet in the scope: it joins when
  // an object of the scope refers to it.
  create(clsName, properties = {}) {
    return this.schema.create(clsName, properties);
  }

  // Sends the pending local changes now. Resolves with
  // {status, changeSet, errors} once the server has answered (status 'empty'
  // when there was nothing to send).
  flush(options = {}) {
    if (this._flushTimer !== null) {
      clearTimeout(this._flushTimer);
      this._flushTimer = null;
    }
    this._collectOrphans(this._localOrphans);
    const fragments = [];
    const parts = [];
    for (const entry of this._pending.values()) {
      const object = entry.object;
      if (object._scope !== this) continue;
      const properties = {};
      if (entry.type === 'add') {
        for (const [key, property] of object._type.properties) {
          const value = object._values[key];
          if (value === null || value === undefined) continue;
          properties[key] = property.type.toWire(value);
        }
        parts.push({type: 'add', object, originals: null});
      } else {
        const originals = new Map();
        for (const [key, old] of entry.originals) {
          const property = object._type.property(key);
          const value = object._values[key];
          if (property.type.equals(value, old)) continue;
          properties[key] = property.type.toWire(value);
          originals.set(key, old);
        }
        if (originals.size === 0) continue;
        parts.push({type: 'change', object, originals});
      }
      fragments.push({type: entry.type, uuid: object.uuid, clsName: object.clsName, properties});
    }
    this._pending.clear();
    if (fragments.length === 0) {
      return Promise.resolve({status: 'empty', changeSet: null, errors: []});
    }
    const changeSet = new ChangeSet(fragments, parts, options.atomic);
    this._inflight.push(changeSet);
    this.client._sendChangeSet(this, changeSet);
    return changeSet.promise;
  }

  // Runs `fn` (synchronously) and sends the changes it makes as one atomic
  // changeset: the server applies all of them or none. Changes made before
  // are sent first, separately. Resolves like flush(); on rejection every
  // change of `fn` is reverted locally.
  modifyAtomically(fn) {
    this.flush();
    let result;
    try {
      result = fn(this);
    } catch (error) {
      this._discardPending();
      throw error;
    }
    if (result && typeof result.then === 'function') {
      this._discardPending();
      throw new TypeError('modifyAtomically takes a synchronous function');
    }
    return this.flush({atomic: true});
  }

  // Undoes the local changes not sent yet.
  discardPendingChanges() {
    this._discardPending();
  }

  // ---- internals: membership ----

  _emitObjectEvent(object, name, payload) {
    if (this._applying > 0) {
      this._queued.push([object, name, payload]);
      return;
    }
    object.emit(name, payload);
    this.emit(name, payload);
  }

  _beginApply() {
    this._applying++;
  }

  _endApply() {
    if (--this._applying > 0) return;
    const queued = this._queued;
    this._queued = [];
    for (const [object, name, payload] of queued) {
      object.emit(name, payload);
      this.emit(name, payload);
    }
  }

  // Checks that `object` and the unscoped objects it refers to may join.
  _checkAttachable(object, seen = new Set()) {
    if (seen.has(object) || object._scope === this) return;
    seen.add(object);
    if (object._scope !== null) throw new Error(`${object} belongs to another scope`);
    const other = this._objects.get(object.uuid);
    if (other && other !== object) {
      throw new Error(`another object with UUID ${object.uuid} is in the scope`);
    }
    if (!this.schema.model(object.clsName) || this.schema.model(object.clsName) !== object.type) {
      throw new Error(`${object} is not of this scope's schema`);
    }
    for (const child of object._children()) this._checkAttachable(child, seen);
  }

  _attach(object, source) {
    if (object._scope === this) return;
    if (object._scope !== null) throw new Error(`${object} belongs to another scope`);
    object._scope = this;
    this._objects.set(object.uuid, object);
    if (source === 'local') {
      this._pending.delete(object.uuid);
      this._pending.set(object.uuid, {type: 'add', object, originals: null});
      this._scheduleFlush();
    }
    this._emitObjectEvent(object, 'attach', {object, scope: this});
    for (const child of object._children()) this._attach(child, source);
  }

  _detach(object) {
    if (object._scope !== this) return;
    object._scope = null;
    if (this._objects.get(object.uuid) === object) this._objects.delete(object.uuid);
    const entry = this._pending.get(object.uuid);
    if (entry && entry.object === object) this._pending.delete(object.uuid);
    this._emitObjectEvent(object, 'detach', {object, scope: this});
  }

  _noteOrphanCandidate(object, source) {
    if (object._scope !== this || object === this.root) return;
    if (source === 'local') {
      this._localOrphans.add(object);
      this._scheduleFlush();
    } else {
      this._remoteOrphans.add(object);
    }
  }

  // Detaches the candidates that have no parent in the scope left, and then
  // their children that became orphans (docs/protocol.md#orphans: by parent count).
  _collectOrphans(candidates) {
    const queue = [...candidates];
    candidates.clear();
    while (queue.length > 0) {
      const object = queue.shift();
      if (object._scope !== this || object === this.root) continue;
      if (object._inScopeParentCount() > 0) continue;
      this._detach(object);
      for (const child of object._children()) {
        if (child._scope === this) queue.push(child);
      }
    }
  }

  // ---- internals: local changes ----

  _recordLocalChange(object, key, old) {
    let entry = this._pending.get(object.uuid);
    if (!entry || entry.object !== object) {
      entry = {type: 'change', object, originals: new Map()};
      this._pending.set(object.uuid, entry);
    }
    if (entry.type === 'change' && !entry.originals.has(key)) entry.originals.set(key, old);
    this._scheduleFlush();
  }

  _scheduleFlush() {
    if (this._flushTimer !== null || this.changeInterval < 0) return;
    this._flushTimer = setTimeout(() => {
      this._flushTimer = null;
      this.flush();
    }, this.changeInterval);
  }

  // The first change after `changeSets` / in the pending batch that sets
  // `key` of `object`: returns its rebase function, or null.
  _laterTouch(changeSets, object, key) {
    for (const changeSet of changeSets) {
      const rebase = changeSet.touch(object, key);
      if (rebase) return rebase;
    }
    const entry = this._pending.get(object.uuid);
    if (entry && entry.object === object) {
      if (entry.type === 'add') return () => {};
      if (entry.originals.has(key)) return (value) => entry.originals.set(key, value);
    }
    return null;
  }

  _discardPending() {
    this._beginApply();
    try {
      const entries = [...this._pending.values()].reverse();
      this._pending.clear();
      for (const entry of entries) {
        if (entry.type !== 'change') continue;
        for (const [key, old] of entry.originals) entry.object._assign(key, old, 'revert');
      }
      for (const entry of entries) {
        if (entry.type === 'add') this._forceRemove(entry.object);
      }
      this._collectOrphans(this._remoteOrphans);
      this._collectOrphans(this._localOrphans);
    } finally {
      this._endApply();
    }
  }

  // Removes every reference to `object` from objects of the scope (without
  // sending anything): used for an object the server does not have.
  _forceRemove(object) {
    if (object._scope !== this || object === this.root) return;
    for (const {parent, key} of object.parents) {
      if (parent._scope !== this) continue;
      const property = parent._type.property(key);
      const current = parent._values[key];
      if (property.type.collection) {
        if (current.includes(object)) {
          parent._assign(key, Object.freeze(current.filter((v) => v !== object)), 'revert');
        }
      } else if (current === object) {
        parent._assign(key, null, 'revert');
      }
    }
    this._remoteOrphans.add(object);
  }

  // ---- internals: replies ----

  // The server's answer to one of our changesets (or null / another message
  // type, which reverts everything).
  _onReply(changeSet, reply) {
    const position = this._inflight.indexOf(changeSet);
    if (position < 0) {
      // Superseded by a ScopeState: nothing to revert any more.
      changeSet._finish(ChangeSetStatus.LOST);
      return;
    }
    const later = this._inflight.slice(position + 1);
    this._inflight.splice(position, 1);
    const {errors, modifications} = ChangeSet.readReply(changeSet, reply);
    const removeLater = [];
    this._beginApply();
    try {
      for (const [i] of errors) {
        const part = changeSet.parts[i];
        if (part.type === 'change') {
          for (const [key, original] of part.originals) {
            const rebase = this._laterTouch(later, part.object, key);
            if (rebase) {
              rebase(original);
            } else if (!part.object._type.property(key).type.equals(part.object._values[key], original)) {
              part.object._assign(key, original, 'revert');
            }
          }
        } else if (!/already exists/.test(errors.get(i).message)) {
          removeLater.push(part.object);
        }
      }
      for (const object of removeLater) this._forceRemove(object);
      for (const [i, values] of modifications) {
        this._applyProperties(changeSet.parts[i].object, values, 'modification', false);
      }
      this._collectOrphans(this._remoteOrphans);
    } finally {
      this._endApply();
    }
    const errorList = [...errors].map(([index, error]) => ({
      index,
      fragment: changeSet.fragments[index],
      object: changeSet.parts[index].object,
      error,
    }));
    let status = ChangeSetStatus.COMPLETED;
    if (errors.size === changeSet.size) status = ChangeSetStatus.REVERTED;
    else if (errors.size > 0) status = ChangeSetStatus.PARTIALLY_REVERTED;
    changeSet._finish(status, errorList);
    if (errorList.length > 0) this.emit('revert', {scope: this, changeSet, errors: errorList});
  }

  // One changeset will never be answered (its session ended).
  _onLost(changeSet) {
    const position = this._inflight.indexOf(changeSet);
    if (position >= 0) this._inflight.splice(position, 1);
    changeSet._finish(ChangeSetStatus.LOST);
  }

  // Every changeset in flight will never be answered (new session).
  _loseInflight() {
    const lost = this._inflight;
    this._inflight = [];
    for (const changeSet of lost) changeSet._finish(ChangeSetStatus.LOST);
  }

  // ---- internals: applying the server's messages ----

  _resolver(created) {
    return (uuid) => this._objects.get(uuid) || (created && created.get(uuid)) || null;
  }

  // Sets wire `values` on `object`. With `defaults`, properties missing from
  // `values` (or with values of the wrong type) get their default (a
  // ScopeState, docs/protocol.md#client-applying). Keys with local changes not yet confirmed keep
  // the local value; the server's value becomes what a revert goes back to.
  _applyProperties(object, values, source, defaults, created = null) {
    const resolve = this._resolver(created);
    const props = values && typeof values === 'object' ? values : {};
    const keys = defaults ? [...object._type.properties.keys()] : Object.keys(props);
    for (const key of keys) {
      const property = object._type.property(key);
      if (!property) continue;
      let value;
      if (Object.prototype.hasOwnProperty.call(props, key)) {
        const r = property.type.fromWire(props[key], resolve);
        if (r.ok) value = r.value;
        else if (defaults) value = property.defaultValue;
        else continue;
      } else {
        value = property.defaultValue;
      }
      if (!defaults && object._scope === this) {
        const rebase = this._laterTouch(this._inflight, object, key);
        if (rebase) {
          rebase(value);
          continue;
        }
      }
      if (!property.type.equals(object._values[key], value)) object._assign(key, value, source);
    }
  }

  // Objects for the "add" fragments whose UUID is not in the scope.
  _instantiate(fragments) {
    const created = new Map();
    for (const fragment of fragments) {
      if (!fragment || fragment.type !== 'add') continue;
      const uuid = normalizeUUID(fragment.uuid);
      if (uuid === null || this._objects.has(uuid) || created.has(uuid)) continue;
      const type = this.schema.model(fragment.clsName);
      if (!type) continue;
      created.set(uuid, new type.cls({}, uuid));
    }
    return created;
  }

  _target(fragment, created) {
    if (!fragment || (fragment.type !== 'add' && fragment.type !== 'change')) return null;
    const uuid = normalizeUUID(fragment.uuid);
    if (uuid === null) return null;
    const object = this._objects.get(uuid) || created.get(uuid);
    if (!object) return null;
    const type = this.schema.model(fragment.clsName);
    if (!type || !object.type.isA(type)) return null;
    return object;
  }

  // A ScopeSync from the server: somebody else's changes.
  _applySync(fragments) {
    if (!Array.isArray(fragments) || fragments.length === 0) return;
    this._beginApply();
    try {
      const created = this._instantiate(fragments);
      for (const fragment of fragments) {
        const object = this._target(fragment, created);
        if (object) this._applyProperties(object, fragment.properties, 'remote', false, created);
      }
      this._collectOrphans(this._remoteOrphans);
    } finally {
      this._endApply();
    }
    this.emit('sync', {scope: this, fragments});
  }

  // A ScopeState: the whole scope. The root adopts rootUUID, every object
  // not in the state leaves the scope, local changes not yet confirmed are
  // dropped (the state is the truth).
  _applyState(rootUUID, fragments) {
    const uuid = normalizeUUID(rootUUID);
    if (uuid === null || !Array.isArray(fragments) || fragments.length === 0) {
      this.emit('error', new JetstreamError('Invalid ScopeState'));
      return false;
    }
    const rootFragment = fragments.find((f) => f && normalizeUUID(f.uuid) === uuid) || fragments[0];
    const rootType = this.schema.model(rootFragment && rootFragment.clsName);
    if (!rootType) {
      this.emit('error', new JetstreamError(`Unknown root class '${rootFragment && rootFragment.clsName}'`));
      return false;
    }
    if (this._flushTimer !== null) {
      clearTimeout(this._flushTimer);
      this._flushTimer = null;
    }
    this._pending.clear();
    this._localOrphans.clear();
    this._loseInflight();
    this._beginApply();
    try {
      if (this.root && this.root.type !== rootType) {
        const old = this.root;
        this.root = null;
        this._detach(old);
      }
      if (!this.root) {
        const existing = this._objects.get(uuid);
        if (existing) this._detach(existing);
        const root = new rootType.cls({}, uuid);
        this.root = root;
        root._scope = this;
        this._objects.set(uuid, root);
        this._emitObjectEvent(root, 'attach', {object: root, scope: this});
      } else if (this.root.uuid !== uuid) {
        const existing = this._objects.get(uuid);
        if (existing && existing !== this.root) this._detach(existing);
        this._objects.delete(this.root.uuid);
        this.root._uuid = uuid;
        this._objects.set(uuid, this.root);
      }
      const normalized = fragments.map((f) => {
        if (f === rootFragment) return {...f, type: 'change', uuid};
        return f;
      });
      const created = this._instantiate(normalized);
      const inState = new Set();
      for (const fragment of normalized) {
        const object = this._target(fragment, created);
        if (!object) continue;
        inState.add(object.uuid);
        this._applyProperties(object, fragment.properties, 'state', true, created);
      }
      for (const object of [...this._objects.values()]) {
        if (object !== this.root && !inState.has(object.uuid)) this._detach(object);
      }
      this._collectOrphans(this._remoteOrphans);
    } finally {
      this._endApply();
    }
    this._stateCount++;
    this.emit('state', {scope: this});
    const waiters = this._stateWaiters;
    this._stateWaiters = [];
    for (const w of waiters) w.resolve(this);
    return true;
  }

  _waitForState() {
    return new Promise((resolve, reject) => this._stateWaiters.push({resolve, reject}));
  }

  _failStateWaiters(error) {
    const waiters = this._stateWaiters;
    this._stateWaiters = [];
    for (const w of waiters) w.reject(error);
  }
}
