// The client's knowledge of the models: read from a schema object in the same
// JSON shape as the sync service's (syncservice/config/demo_schema.json):
//
//   {"enumerations": {"Status": {"type": "Number", "values": {"Open": 0}}},
//    "models": {"Shape": {"extends": "Base", "properties": {"x": "Number",
//                         "tags": {"type": "[String]", "default": []}}}}}
//
// Property types: String, Number, Boolean, Date, an enumeration name, a model
// name, or any of those in brackets for a collection ("[Shape]").

import {ModelObject, defineModelClass} from './model.js';
import {normalizeUUID} from './uuid.js';

const SCALARS = new Set(['String', 'Number', 'Boolean', 'Date']);
const EMPTY = Object.freeze([]);

export class Enumeration {
  constructor(name, json) {
    this.name = name;
    if (!json || (json.type !== 'String' && json.type !== 'Number')) {
      throw new Error(`enumeration '${name}': 'type' must be "String" or "Number"`);
    }
    this.numeric = json.type === 'Number';
    if (this.numeric) {
      if (!json.values || typeof json.values !== 'object' || Array.isArray(json.values)) {
        throw new Error(`enumeration '${name}': 'values' must be an object of names to integers`);
      }
      this.labels = Object.keys(json.values);
      this.values = this.labels.map((label) => json.values[label]);
      for (const v of this.values) {
        if (!Number.isInteger(v)) throw new Error(`enumeration '${name}': values must be integers`);
      }
    } else {
      if (!Array.isArray(json.values) || json.values.some((v) => typeof v !== 'string')) {
        throw new Error(`enumeration '${name}': 'values' must be an array of strings`);
      }
      this.values = [...json.values];
      this.labels = [...json.values];
    }
    Object.freeze(this.values);
    Object.freeze(this.labels);
  }

  has(value) {
    return this.values.includes(value);
  }

  // The name of a value (for numeric enumerations the key in the schema).
  label(value) {
    const i = this.values.indexOf(value);
    return i >= 0 ? this.labels[i] : undefined;
  }
}

// The type of one property, with the conversions between the values models
// hold locally and their JSON wire form.
export class PropertyType {
  constructor(spec, schema) {
    this.spec = spec;
    let name = spec;
    this.collection = false;
    if (spec.length >= 2 && spec.startsWith('[') && spec.endsWith(']')) {
      this.collection = true;
      name = spec.slice(1, -1);
    }
    this.name = name;
    if (SCALARS.has(name)) {
      this.base = name;
    } else if (schema._enumerations.has(name)) {
      this.base = 'Enumeration';
      this.enumeration = schema._enumerations.get(name);
    } else if (schema._models.has(name)) {
      this.base = 'Model';
      this.model = schema._models.get(name);
    } else {
      throw new Error(`unknown type '${spec}'`);
    }
  }

  get isReference() {
    return this.base === 'Model';
  }

  // The initial value for this type when the schema gives no default.
  get emptyValue() {
    return this.collection ? EMPTY : null;
  }

  _elementError(value) {
    switch (this.base) {
      case 'String':
        return typeof value === 'string' ? null : 'a string';
      case 'Number':
        return typeof value === 'number' && Number.isFinite(value) ? null : 'a finite number';
      case 'Boolean':
        return typeof value === 'boolean' ? null : 'a boolean';
      case 'Date':
        return value instanceof Date && !Number.isNaN(value.getTime()) ? null : 'a valid Date';
      case 'Enumeration':
        return this.enumeration.has(value)
          ? null
          : `one of ${JSON.stringify(this.enumeration.values)}`;
      case 'Model':
        return value instanceof ModelObject && value.type.isA(this.model)
          ? null
          : `a ${this.model.name} model object`;
    }
    return 'unknown';
  }

  // Checks a value given by the application; returns the value to store
  // (collections become frozen copies) or throws a TypeError.
  checkLocal(value, where) {
    if (this.collection) {
      if (!Array.isArray(value)) {
        throw new TypeError(`${where} must be an array (${this.spec})`);
      }
      for (const element of value) {
        const error = this._elementError(element);
        if (error) throw new TypeError(`${where}: every element must be ${error}`);
      }
      return Object.freeze([...value]);
    }
    if (value === null || value === undefined) return null;
    const error = this._elementError(value);
    if (error) throw new TypeError(`${where} must be ${error} or null`);
    return value;
  }

  _elementFromWire(value, resolve) {
    switch (this.base) {
      case 'String':
      case 'Number':
      case 'Boolean':
      case 'Enumeration':
        return this._elementError(value) === null ? {ok: true, value} : {ok: false};
      case 'Date':
        if (typeof value !== 'number' || !Number.isFinite(value)) return {ok: false};
        return {ok: true, value: new Date(Math.round(value * 1000))};
      case 'Model': {
        const uuid = normalizeUUID(value);
        if (uuid === null || !resolve) return {ok: false};
        const object = resolve(uuid);
        if (!object || !object.type.isA(this.model)) return {ok: false};
        return {ok: true, value: object};
      }
    }
    return {ok: false};
  }

  // Converts a wire value received from the server. Returns {ok:false} for
  // values of the wrong type (they are ignored, as iOS does); references to
  // unknown objects are dropped (null, or left out of a collection).
  fromWire(value, resolve) {
    if (this.collection) {
      if (!Array.isArray(value)) return {ok: false};
      const out = [];
      for (const element of value) {
        const r = this._elementFromWire(element, resolve);
        if (r.ok) {
          out.push(r.value);
        } else if (!this.isReference) {
          return {ok: false};
        }
      }
      return {ok: true, value: Object.freeze(out)};
    }
    if (value === null) return {ok: true, value: null};
    const r = this._elementFromWire(value, resolve);
    if (!r.ok && this.isReference) return {ok: true, value: null};
    return r;
  }

  _elementToWire(value) {
    if (value === null || value === undefined) return null;
    if (this.base === 'Date') return value instanceof Date ? value.getTime() / 1000 : value;
    if (this.base === 'Model') return value.uuid;
    return value;
  }

  toWire(value) {
    if (this.collection) return (value || EMPTY).map((v) => this._elementToWire(v));
    return this._elementToWire(value);
  }

  _elementEquals(a, b) {
    if (a === b) return true;
    if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
    return false;
  }

  equals(a, b) {
    if (this.collection) {
      if (a === b) return true;
      if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) {
        if (!this._elementEquals(a[i], b[i])) return false;
      }
      return true;
    }
    return this._elementEquals(a, b);
  }

  // The model objects a value refers to (with repetitions).
  references(value) {
    if (!this.isReference || value === null || value === undefined) return [];
    return this.collection ? [...value] : [value];
  }
}

export class Property {
  constructor(name, type, defaultValue) {
    this.name = name;
    this.type = type;
    this.defaultValue = defaultValue;
  }
}

export class ModelType {
  constructor(name, schema) {
    this.name = name;
    this.schema = schema;
    this.base = null;
    // Inherited properties first, in declaration order.
    this.properties = new Map();
    this.cls = null;
  }

  isA(other) {
    for (let t = this; t; t = t.base) {
      if (t === other) return true;
    }
    return false;
  }

  property(name) {
    return this.properties.get(name);
  }

  get referenceProperties() {
    return [...this.properties.values()].filter((p) => p.type.isReference);
  }
}

export class Schema {
  // `json`: a schema object (or its JSON text) shaped like
  // syncservice/config/demo_schema.json.
  constructor(json) {
    if (typeof json === 'string') json = JSON.parse(json);
    if (!json || typeof json !== 'object' || !json.models || typeof json.models !== 'object') {
      throw new Error("a schema needs a 'models' object");
    }
    this._enumerations = new Map();
    this._models = new Map();
    for (const [name, spec] of Object.entries(json.enumerations || {})) {
      this._enumerations.set(name, new Enumeration(name, spec));
    }
    for (const name of Object.keys(json.models)) {
      if (this._enumerations.has(name) || SCALARS.has(name)) {
        throw new Error(`model '${name}': the name is taken`);
      }
      this._models.set(name, new ModelType(name, this));
    }
    for (const [name, spec] of Object.entries(json.models)) {
      if (spec && spec.extends !== undefined) {
        const base = this._models.get(spec.extends);
        if (!base) throw new Error(`model '${name}' extends unknown model '${spec.extends}'`);
        this._models.get(name).base = base;
      }
    }
    // Properties, bases first.
    const done = new Set();
    const ordered = [];
    const visiting = new Set();
    const visit = (type) => {
      if (done.has(type)) return;
      if (visiting.has(type)) throw new Error(`model '${type.name}': inheritance forms a cycle`);
      visiting.add(type);
      if (type.base) {
        visit(type.base);
        for (const [k, p] of type.base.properties) type.properties.set(k, p);
      }
      const props = (json.models[type.name] && json.models[type.name].properties) || {};
      for (const [key, raw] of Object.entries(props)) {
        if (type.properties.has(key)) {
          throw new Error(`model '${type.name}', property '${key}': defined twice`);
        }
        const spec = typeof raw === 'string' ? raw : raw && raw.type;
        if (typeof spec !== 'string') {
          throw new Error(`model '${type.name}', property '${key}': the type must be a string`);
        }
        let propertyType;
        try {
          propertyType = new PropertyType(spec, this);
        } catch (e) {
          throw new Error(`model '${type.name}', property '${key}': ${e.message}`);
        }
        let defaultValue = propertyType.emptyValue;
        if (raw && typeof raw === 'object' && raw.default !== undefined && !propertyType.isReference) {
          const r = propertyType.fromWire(raw.default, null);
          if (!r.ok) {
            throw new Error(`model '${type.name}', property '${key}': bad default`);
          }
          defaultValue = r.value;
        }
        type.properties.set(key, new Property(key, propertyType, defaultValue));
      }
      visiting.delete(type);
      done.add(type);
      ordered.push(type);
    };
    for (const type of this._models.values()) visit(type);
    for (const type of ordered) type.cls = defineModelClass(type);
  }

  model(name) {
    return this._models.get(name);
  }

  get models() {
    return [...this._models.values()];
  }

  enumeration(name) {
    return this._enumerations.get(name);
  }

  // The generated class of a model: `new (schema.classOf('Shape'))({x: 1})`.
  classOf(name) {
    const type = this._models.get(name);
    if (!type) throw new Error(`No such model '${name}'`);
    return type.cls;
  }

  // A new model object, not yet in any scope; it joins one when a scoped
  // object refers to it.
  create(clsName, properties = {}, uuid = undefined) {
    const Cls = this.classOf(clsName);
    return new Cls(properties, uuid);
  }
}
