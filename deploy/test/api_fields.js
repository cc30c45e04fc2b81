// Offline validation of Kubernetes objects against the API's definitions.
//
// validateObject() runs two checks:
//  1. the JSON-schema validator that kubernetes-models (and
//     @kubernetes-models/prometheus-operator for the operator's kinds)
//     generated from the Kubernetes OpenAPI definitions: types, enums,
//     required fields, formats;
//  2. unknown fields. Those validators accept any extra field, as the API
//     server does unless asked for strict validation, so a misspelt field
//     (readOnlyRootFileSystem) would pass and silently do nothing. The
//     packages also ship the same definitions as TypeScript declarations
//     (*.d.ts: one interface per API type, its fields and their types);
//     this module reads those and reports every field they do not declare.
//
// Only the shapes the generated declarations use are understood: object
// types with quoted or bare field names, index signatures, Array<T>, T[],
// unions, string literals, primitives and references to imported or local
// declarations. Anything else is accepted without looking inside.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const nodeModules = path.join(path.dirname(fileURLToPath(import.meta.url)), "node_modules");

// The package and path (under it) of the model of apiVersion/kind.
function modelModule(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

// ---- TypeScript declaration reading ----

function tokenize(text) {
  const tokens = [];
  const re = /\s+|\/\*[\s\S]*?\*\/|\/\/[^\n]*|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_$][\w$]*)|(\S)/g;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m[1] !== undefined) tokens.push({ t: "str", v: m[1].slice(1, -1) });
    else if (m[2] !== undefined) tokens.push({ t: "id", v: m[2] });
    else if (m[3] !== undefined) tokens.push({ t: "p", v: m[3] });
  }
  return tokens;
}

class Parser {
  constructor(tokens, file) {
    this.tokens = tokens;
    this.i = 0;
    this.file = file;
  }
  peek(offset = 0) {
    return this.tokens[this.i + offset];
  }
  is(v, offset = 0) {
    const tok = this.peek(offset);
    return tok !== undefined && tok.v === v && tok.t !== "str";
  }
  next() {
    return this.tokens[this.i++];
  }
  expect(v) {
    const tok = this.next();
    if (!tok || tok.v !== v) {
      throw new Error(`${this.file}: expected '${v}', found '${tok ? tok.v : "end"}'`);
    }
  }
  // type := member ('|' member)*
  type() {
    if (this.is("|")) this.next();
    const members = [this.postfix()];
    while (this.is("|")) {
      this.next();
      members.push(this.postfix());
    }
    return members.length === 1 ? members[0] : { kind: "union", members };
  }
  postfix() {
    let t = this.primary();
    while (this.is("[") && this.is("]", 1)) {
      this.next();
      this.next();
      t = { kind: "array", of: t };
    }
    return t;
  }
  primary() {
    const tok = this.next();
    if (!tok) throw new Error(`${this.file}: type expected`);
    if (tok.t === "str") return { kind: "any" };
    if (tok.v === "{") return this.objectBody();
    if (tok.v === "(") {
      const t = this.type();
      this.expect(")");
      return t;
    }
    if (tok.t === "id") {
      if (this.is("<")) {
        this.next();
        const args = [this.type()];
        while (this.is(",")) {
          this.next();
          args.push(this.type());
        }
        this.expect(">");
        if (tok.v === "Array" && args.length === 1) return { kind: "array", of: args[0] };
        return { kind: "any" };
      }
      if (["string", "number", "boolean", "any", "unknown", "null", "undefined", "true", "false", "object"].includes(tok.v)) {
        return { kind: "any" };
      }
      return { kind: "ref", name: tok.v, file: this.file };
    }
    if (tok.v === "-") {
      this.next();
      return { kind: "any" };
    }
    if (/^[0-9]$/.test(tok.v)) return { kind: "any" };
    throw new Error(`${this.file}: unexpected '${tok.v}' in a type`);
  }
  // After '{': fields and index signatures up to '}'.
  objectBody() {
    const props = new Map();
    let index = null;
    while (!this.is("}")) {
      if (this.is("readonly")) this.next();
      if (this.is("[")) {
        this.next();
        this.next(); // key name
        this.expect(":");
        this.type();
        this.expect("]");
        this.expect(":");
        index = this.type();
      } else {
        const name = this.next();
        if (!name) throw new Error(`${this.file}: unterminated object type`);
        if (this.is("?")) this.next();
        if (this.is("(")) {
          // A method (classes only): skip to the end of the member.
          this.skipMember();
          continue;
        }
        this.expect(":");
        props.set(name.v, this.type());
      }
      if (this.is(";") || this.is(",")) this.next();
    }
    this.next();
    return { kind: "object", props, index };
  }
  skipMember() {
    let depth = 0;
    while (this.i < this.tokens.length) {
      const v = this.next().v;
      if (v === "(" || v === "{" || v === "<") depth++;
      else if (v === ")" || v === "}" || v === ">") depth--;
      else if (v === ";" && depth === 0) return;
    }
  }
}

// One declaration file: its interfaces and type aliases, what it imports
// (local name -> [module file, exported name]) and its export aliases.
const files = new Map();

function resolveModule(spec, fromFile) {
  const base = spec.startsWith(".")
    ? path.resolve(path.dirname(fromFile), spec)
    : path.join(nodeModules, spec);
  for (const candidate of [`${base}.d.ts`, path.join(base, "index.d.ts")]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return null;
}

function loadFile(file) {
  if (files.has(file)) return files.get(file);
  const info = { decls: new Map(), imports: new Map(), aliases: new Map() };
  files.set(file, info);
  const p = new Parser(tokenize(fs.readFileSync(file, "utf8")), file);
  while (p.i < p.tokens.length) {
    if (p.is("import") && p.is("{", 1)) {
      p.next();
      p.next();
      const names = [];
      while (!p.is("}")) {
        const name = p.next().v;
        let local = name;
        if (p.is("as")) {
          p.next();
          local = p.next().v;
        }
        names.push([name, local]);
        if (p.is(",")) p.next();
      }
      p.next();
      p.expect("from");
      const module = resolveModule(p.next().v, file);
      for (const [name, local] of names) info.imports.set(local, [module, name]);
      continue;
    }
    if (p.is("export") && p.is("{", 1)) {
      p.next();
      p.next();
      while (!p.is("}")) {
        const name = p.next().v;
        let exported = name;
        if (p.is("as")) {
          p.next();
          exported = p.next().v;
        }
        info.aliases.set(exported, name);
        if (p.is(",")) p.next();
      }
      p.next();
      continue;
    }
    if (p.is("interface")) {
      p.next();
      const name = p.next().v;
      while (!p.is("{")) p.next(); // extends ... (not used by the models)
      p.next();
      info.decls.set(name, p.objectBody());
      continue;
    }
    if (p.is("type") && p.peek(1) && p.peek(1).t === "id" && p.is("=", 2)) {
      p.next();
      const name = p.next().v;
      p.next();
      info.decls.set(name, p.type());
      continue;
    }
    if (p.is("class")) {
      // Classes repeat their interface's fields; skip the body.
      while (!p.is("{")) p.next();
      p.next();
      let depth = 1;
      while (depth > 0 && p.i < p.tokens.length) {
        const v = p.next().v;
        if (v === "{") depth++;
        else if (v === "}") depth--;
      }
      continue;
    }
    p.next();
  }
  return info;
}

// The type a name stands for in `file`; null if unknown.
function lookup(name, file, seen = new Set()) {
  const key = `${file}#${name}`;
  if (seen.has(key) || file === null) return null;
  seen.add(key);
  const info = loadFile(file);
  if (info.decls.has(name)) return info.decls.get(name);
  if (info.aliases.has(name)) return lookup(info.aliases.get(name), file, seen);
  if (info.imports.has(name)) {
    const [module, exported] = info.imports.get(name);
    return lookup(exported, module, seen);
  }
  return null;
}

function resolve(type) {
  let t = type;
  for (let depth = 0; t && t.kind === "ref" && depth < 20; depth++) t = lookup(t.name, t.file);
  return t && t.kind !== "ref" ? t : { kind: "any" };
}

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// Every field of `value` that `type` does not declare, as "path: message".
function unknownFields(value, type, where, out) {
  const t = resolve(type);
  if (t.kind === "array") {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, t.of, `${where}[${i}]`, out));
    return;
  }
  if (t.kind === "union") {
    const shapes = t.members.map(resolve).filter((m) => m.kind === "object" || m.kind === "array");
    if (shapes.length === 0) return;
    const attempts = shapes.map((m) => {
      const errors = [];
      unknownFields(value, m, where, errors);
      return errors;
    });
    if (!attempts.some((e) => e.length === 0)) out.push(...attempts[0]);
    return;
  }
  if (t.kind !== "object" || !isPlainObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    if (t.props.has(key)) unknownFields(v, t.props.get(key), `${where}.${key}`, out);
    else if (t.index) unknownFields(v, t.index, `${where}.${key}`, out);
    else out.push(`${where}.${key}: not a field of this type`);
  }
}

// ---- the checks ----

const models = new Map();

async function modelClass(apiVersion, kind) {
  const module = modelModule(apiVersion, kind);
  if (!models.has(module)) {
    let cls = null;
    try {
      cls = (await import(module))[kind] ?? null;
    } catch {
      cls = null;
    }
    models.set(module, cls);
  }
  return models.get(module);
}

// Validates one object; returns the problems found (empty: valid).
export async function validateObject(object) {
  const name = `${object?.kind ?? "?"}/${object?.metadata?.name ?? "?"}`;
  if (!isPlainObject(object) || typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
    return [`${name}: not a Kubernetes object (apiVersion and kind)`];
  }
  const cls = await modelClass(object.apiVersion, object.kind);
  if (cls === null) {
    return [`${name}: no API definition for ${object.apiVersion} ${object.kind}`];
  }
  const problems = [];
  try {
    new cls(object).validate();
  } catch (e) {
    problems.push(`${name}: ${e.message}`);
  }
  const declarations = resolveModule(modelModule(object.apiVersion, object.kind), path.join(nodeModules, "x"));
  const type = declarations ? lookup(`I${object.kind}`, declarations) : null;
  if (type === null) {
    problems.push(`${name}: no type declarations for ${object.apiVersion} ${object.kind}`);
  } else {
    const unknown = [];
    unknownFields(object, type, name, unknown);
    problems.push(...unknown);
  }
  return problems;
}
