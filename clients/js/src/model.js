// Model objects: typed records with a UUID, parent links and change events.
//
// Every model of a Schema gets a generated subclass of ModelObject with one
// accessor per property (`shape.x = 10`), unless the property's name clashes
// with a ModelObject member; get()/set() always work.
//
// Events (on the object; the scope repeats them for all its objects):
//   'change'  {object, keys, source}   source: 'local' | 'remote' | 'state' |
//                                       'revert' | 'modification'
//   'attach'  {object, scope}          the object joined a scope
//   'detach'  {object, scope}          the object left its scope

import {Emitter} from './emitter.js';
import {randomUUID, normalizeUUID} from './uuid.js';

export class ModelObject extends Emitter {
  constructor(properties = {}, uuid = undefined) {
    super();
    const type = new.target && new.target.modelType;
    if (!type) {
      throw new TypeError('create model objects with schema.create() or a generated model class');
    }
    let id = uuid === undefined ? randomUUID() : normalizeUUID(uuid);
    if (id === null) throw new TypeError(`'${uuid}' is not a UUID`);
    Object.defineProperties(this, {
      _type: {value: type},
      _uuid: {value: id, writable: true},
      _values: {value: Object.create(null)},
      _parents: {value: []},
      _scope: {value: null, writable: true},
    });
    for (const [key, property] of type.properties) this._values[key] = property.defaultValue;
    if (properties && typeof properties === 'object') {
      for (const [key, value] of Object.entries(properties)) this.set(key, value);
    }
  }

  get uuid() {
    return this._uuid;
  }

  get clsName() {
    return this._type.name;
  }

  get type() {
    return this._type;
  }

  // The Scope this object is in, or null.
  get scope() {
    return this._scope;
  }

  get isRoot() {
    return this._scope !== null && this._scope.root === this;
  }

  // The objects referring to this one: [{parent, key}], one entry per
  // reference.
  get parents() {
    return this._parents.map((p) => ({parent: p.parent, key: p.key}));
  }

  get(key) {
    this._property(key);
    return this._values[key];
  }

  // set(key, value) or set({key: value, ...}). Throws a TypeError for a value
  // of the wrong type; references to objects in another scope are refused.
  set(keyOrValues, value) {
    if (keyOrValues && typeof keyOrValues === 'object') {
      const entries = Object.entries(keyOrValues);
      const checked = entries.map(([k, v]) => [k, this._check(k, v)]);
      for (const [k, v] of checked) this._setChecked(k, v);
      return this;
    }
    this._setChecked(keyOrValues, this._check(keyOrValues, value));
    return this;
  }

  // Appends to a collection property.
  push(key, ...items) {
    const current = this.get(key);
    if (!Array.isArray(current)) throw new TypeError(`'${key}' is not a collection`);
    return this.set(key, [...current, ...items]);
  }

  // Removes every occurrence of the items from a collection property.
  pull(key, ...items) {
    const current = this.get(key);
    if (!Array.isArray(current)) throw new TypeError(`'${key}' is not a collection`);
    return this.set(key, current.filter((v) => !items.includes(v)));
  }

  // Removes every reference to this object from the objects referring to it;
  // in a scope it then leaves at the end of the current change batch.
  detach() {
    if (this.isRoot) throw new Error('the root of a scope cannot be detached');
    for (const {parent, key} of this.parents) {
      const property = parent._type.property(key);
      const current = parent._values[key];
      if (property.type.collection) {
        if (current.includes(this)) parent.set(key, current.filter((v) => v !== this));
      } else if (current === this) {
        parent.set(key, null);
      }
    }
    return this;
  }

  // The values as a plain object (local form: Dates, model objects, arrays).
  values() {
    return {...this._values};
  }

  // Wire form, as in an "add" fragment.
  toJSON() {
    const properties = {};
    for (const [key, p] of this._type.properties) properties[key] = p.type.toWire(this._values[key]);
    return {uuid: this._uuid, clsName: this._type.name, properties};
  }

  toString() {
    return `${this._type.name}(${this._uuid})`;
  }

  // ---- internals ----

  _property(key) {
    const property = this._type.property(key);
    if (!property) throw new Error(`No property '${key}' on ${this._type.name}`);
    return property;
  }

  _check(key, value) {
    const property = this._property(key);
    const checked = property.type.checkLocal(value, `${this._type.name}.${key}`);
    if (property.type.isReference && this._scope) {
      for (const child of property.type.references(checked)) this._scope._checkAttachable(child);
    }
    return checked;
  }

  // Sets a value property WITHOUT the type check, so that the server gets to
  // reject it: meant for tests and demos of the revert path.
  unsafeSet(key, value) {
    const property = this._property(key);
    if (property.type.isReference) throw new TypeError('unsafeSet() is for value properties');
    if (this._values[key] !== value) this._assign(key, value, 'local');
    return this;
  }

  _setChecked(key, value) {
    const property = this._type.property(key);
    if (property.type.equals(this._values[key], value)) return;
    this._assign(key, value, 'local');
  }

  // Stores a value already known to be valid, keeps parent links and scope
  // membership up to date, records local changes and emits events.
  _assign(key, value, source) {
    const property = this._type.property(key);
    const old = this._values[key];
    let added = [];
    let removed = [];
    if (property.type.isReference) {
      removed = property.type.references(old);
      added = property.type.references(value);
      // Remove common occurrences: what stays referenced keeps its link.
      for (let i = removed.length - 1; i >= 0; i--) {
        const j = added.indexOf(removed[i]);
        if (j >= 0) {
          added.splice(j, 1);
          removed.splice(i, 1);
        }
      }
      for (const child of removed) child._removeParent(this, key);
      for (const child of added) child._addParent(this, key);
    }
    this._values[key] = value;
    const scope = this._scope;
    if (scope) {
      if (source === 'local') scope._recordLocalChange(this, key, old);
      for (const child of added) scope._attach(child, source);
      for (const child of removed) scope._noteOrphanCandidate(child, source);
      scope._emitObjectEvent(this, 'change', {object: this, keys: [key], source});
    } else {
      this.emit('change', {object: this, keys: [key], source});
    }
  }

  _addParent(parent, key) {
    this._parents.push({parent, key});
  }

  _removeParent(parent, key) {
    const i = this._parents.findIndex((p) => p.parent === parent && p.key === key);
    if (i >= 0) this._parents.splice(i, 1);
  }

  _inScopeParentCount() {
    let n = 0;
    for (const p of this._parents) if (p.parent._scope === this._scope) n++;
    return n;
  }

  // Objects this one refers to (with repetitions).
  _children() {
    const out = [];
    for (const property of this._type.properties.values()) {
      if (property.type.isReference) out.push(...property.type.references(this._values[property.name]));
    }
    return out;
  }
}

const RESERVED = new Set(['constructor', '__proto__', 'prototype']);

function isReservedName(name) {
  if (RESERVED.has(name) || name.startsWith('_')) return true;
  return name in ModelObject.prototype;
}

// The class of one model (called by Schema).
export function defineModelClass(type) {
  const Base = type.base && type.base.cls ? type.base.cls : ModelObject;
  const cls = {
    [type.name]: class extends Base {},
  }[type.name];
  Object.defineProperty(cls, 'modelType', {value: type});
  for (const key of type.properties.keys()) {
    if (isReservedName(key) || Object.prototype.hasOwnProperty.call(Base.prototype, key)) continue;
    Object.defineProperty(cls.prototype, key, {
      configurable: true,
      enumerable: true,
      get() {
        return this._values[key];
      },
      set(value) {
        this.set(key, value);
      },
    });
  }
  return cls;
}
