// Unit tests of the pure parts: schema, model objects, parent links, change
// batching and coalescing, applying server messages, revert logic.

import {test, describe} from 'node:test';
import assert from 'node:assert/strict';

import {Schema, ModelObject, ChangeSetStatus, randomUUID} from '../src/index.js';
import {demoSchema, offlineScope, canvasState} from './helpers/fixtures.js';

describe('Schema', () => {
  test('reads the demo schema: models, enumerations, generated classes', () => {
    const schema = demoSchema();
    assert.deepEqual(
      schema.models.map((m) => m.name).sort(),
      ['Canvas', 'ChatRoom', 'ChatRoomAttributes', 'Message', 'Shape', 'User'],
    );
    assert.deepEqual(schema.enumeration('ChatRoomStatus').values, [0, 1]);
    assert.equal(schema.enumeration('ChatRoomStatus').label(1), 'Closed');
    const shape = new (schema.classOf('Shape'))({x: 1});
    assert.ok(shape instanceof ModelObject);
    assert.equal(shape.constructor.name, 'Shape');
    assert.equal(shape.x, 1);
    assert.equal(shape.color, null);
    assert.deepEqual(schema.create('Canvas').shapes, []);
  });

  test('inheritance, defaults and unknown types', () => {
    const schema = new Schema({
      enumerations: {Mood: {type: 'String', values: ['happy', 'sad']}},
      models: {
        Child: {extends: 'Base', properties: {tags: {type: '[String]', default: ['a']}, mood: 'Mood'}},
        Base: {properties: {name: {type: 'String', default: 'none'}, when: {type: 'Date', default: 1.5}}},
      },
    });
    const child = schema.create('Child');
    assert.equal(child.name, 'none');
    assert.equal(child.when.getTime(), 1500);
    assert.deepEqual(child.tags, ['a']);
    assert.ok(child.type.isA(schema.model('Base')));
    assert.ok(child instanceof schema.classOf('Base'));
    assert.throws(() => (child.mood = 'angry'), TypeError);
    child.mood = 'sad';
    assert.throws(() => new Schema({models: {A: {properties: {b: 'Nope'}}}}), /unknown type 'Nope'/);
  });

  test('type checks on set', () => {
    const schema = demoSchema();
    const shape = schema.create('Shape');
    assert.throws(() => (shape.x = 'left'), TypeError);
    assert.throws(() => (shape.x = NaN), TypeError);
    assert.throws(() => shape.set('nope', 1), /No property 'nope'/);
    const canvas = schema.create('Canvas');
    assert.throws(() => (canvas.shapes = [canvas]), TypeError);
    assert.throws(() => (canvas.shapes = shape), TypeError);
    const user = schema.create('User');
    assert.throws(() => (user.lastActive = 12), TypeError);
    user.lastActive = new Date(1450582561123);
    assert.equal(user.toJSON().properties.lastActive, 1450582561.123);
  });

  test('wire conversions: dates in seconds, references by UUID', () => {
    const schema = demoSchema();
    const type = schema.model('Message').property('postedAt').type;
    const r = type.fromWire(1450582561.123, null);
    assert.ok(r.ok);
    assert.equal(r.value.getTime(), 1450582561123);
    assert.equal(type.toWire(r.value), 1450582561.123);
    assert.equal(type.fromWire('yesterday', null).ok, false);
    const shapes = schema.model('Canvas').property('shapes').type;
    const s = schema.create('Shape');
    const known = shapes.fromWire([s.uuid.toUpperCase(), randomUUID()], (u) => (u === s.uuid ? s : null));
    assert.deepEqual(known.value, [s]);  // unknown references are dropped
  });
});

describe('Model objects', () => {
  test('parent links follow references', () => {
    const schema = demoSchema();
    const canvas = schema.create('Canvas');
    const shape = schema.create('Shape');
    canvas.shapes = [shape];
    assert.deepEqual(shape.parents, [{parent: canvas, key: 'shapes'}]);
    canvas.push('shapes', shape);
    assert.equal(shape.parents.length, 2);
    canvas.pull('shapes', shape);
    assert.deepEqual(shape.parents, []);
  });

  test('change events on unscoped objects', () => {
    const shape = demoSchema().create('Shape');
    const seen = [];
    shape.on('change', (e) => seen.push([e.keys, e.source]));
    shape.x = 5;
    shape.x = 5;  // no change
    shape.set({y: 1, width: 2});
    assert.deepEqual(seen, [[['x'], 'local'], [['y'], 'local'], [['width'], 'local']]);
  });
});

describe('Scope: applying server messages', () => {
  test('ScopeState builds the tree; the root adopts rootUUID', () => {
    const {scope} = offlineScope();
    const {rootUUID, fragments, shapeUUIDs} = canvasState(2);
    scope._applyState(rootUUID, fragments);
    assert.equal(scope.root.uuid, rootUUID);
    assert.equal(scope.root.name, 'Shapes Demo');
    assert.deepEqual(scope.root.shapes.map((s) => s.uuid), shapeUUIDs);
    assert.equal(scope.size, 3);
    assert.equal(scope.get(shapeUUIDs[1]).x, 20);
    assert.equal(scope.get(shapeUUIDs[1]).scope, scope);
  });

  test('ScopeState detaches the objects that are NOT in the state (docs/protocol.md#client-js)', () => {
    const {scope} = offlineScope();
    const first = canvasState(2);
    scope._applyState(first.rootUUID, first.fragments);
    const kept = scope.get(first.shapeUUIDs[0]);
    const dropped = scope.get(first.shapeUUIDs[1]);
    const detached = [];
    scope.on('detach', (e) => detached.push(e.object));
    const next = [
      {type: 'change', uuid: first.rootUUID, clsName: 'Canvas', properties: {name: 'x', shapes: [kept.uuid]}},
      {type: 'add', uuid: kept.uuid, clsName: 'Shape', properties: {x: 1}},
    ];
    scope._applyState(first.rootUUID, next);
    assert.deepEqual(detached, [dropped]);
    assert.equal(dropped.scope, null);
    assert.equal(kept.scope, scope);
    assert.equal(kept.x, 1);
    assert.equal(kept.width, null, 'properties missing from the state get their default');
    // Reapplying the same state changes nothing.
    let changes = 0;
    scope.on('change', () => changes++);
    scope._applyState(first.rootUUID, next);
    assert.equal(changes, 0);
  });

  test('ScopeSync: add order independent, moves and orphan removal', () => {
    const {scope} = offlineScope();
    const {rootUUID, fragments, shapeUUIDs} = canvasState(1);
    scope._applyState(rootUUID, fragments);
    const s2 = randomUUID();
    scope._applySync([
      {type: 'change', uuid: rootUUID, clsName: 'Canvas', properties: {shapes: [shapeUUIDs[0], s2]}},
      {type: 'add', uuid: s2, clsName: 'Shape', properties: {x: 50, y: 50}},
    ]);
    assert.equal(scope.get(s2).x, 50);
    assert.equal(scope.root.shapes.length, 2);
    const s1 = scope.get(shapeUUIDs[0]);
    scope._applySync([{type: 'change', uuid: rootUUID, clsName: 'Canvas', properties: {shapes: [s2]}}]);
    assert.equal(s1.scope, null);
    assert.equal(scope.get(shapeUUIDs[0]), undefined);
    // Wrong types and unknown keys are ignored.
    scope._applySync([{type: 'change', uuid: s2, clsName: 'Shape', properties: {x: 'left', nope: 1, y: 7}}]);
    assert.equal(scope.get(s2).x, 50);
    assert.equal(scope.get(s2).y, 7);
  });

  test('orphan removal is recursive and by parent count (chat users stay while referenced)', () => {
    const {scope} = offlineScope();
    const root = randomUUID();
    const user = randomUUID();
    const msg = randomUUID();
    scope._applyState(root, [
      {type: 'change', uuid: root, clsName: 'ChatRoom', properties: {name: 'c', users: [user], messages: [msg]}},
      {type: 'add', uuid: user, clsName: 'User', properties: {username: 'ann'}},
      {type: 'add', uuid: msg, clsName: 'Message', properties: {author: user, text: 'hi', postedAt: 1}},
    ]);
    assert.equal(scope.get(msg).author, scope.get(user));
    scope._applySync([{type: 'change', uuid: root, clsName: 'ChatRoom', properties: {users: []}}]);
    assert.ok(scope.get(user), 'still referenced by the message');
    scope._applySync([{type: 'change', uuid: root, clsName: 'ChatRoom', properties: {messages: []}}]);
    assert.equal(scope.get(user), undefined);
    assert.equal(scope.get(msg), undefined);
  });
});

describe('Scope: local change batching', () => {
  function ready(schema = demoSchema()) {
    const o = offlineScope({schema});
    const state = canvasState(2);
    o.scope._applyState(state.rootUUID, state.fragments);
    return {...o, ...state};
  }

  test('coalesces per object: only changed keys, one fragment per object', () => {
    const {scope, sent, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 11;
    s1.x = 12;
    s1.y = 13;
    scope.get(shapeUUIDs[1]).color = 0xff0000ff;
    scope.flush();
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0].fragments, [
      {type: 'change', uuid: shapeUUIDs[0], clsName: 'Shape', properties: {x: 12, y: 13}},
      {type: 'change', uuid: shapeUUIDs[1], clsName: 'Shape', properties: {color: 0xff0000ff}},
    ]);
  });

  test('a value changed and changed back sends nothing', () => {
    const {scope, sent, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 99;
    s1.x = 10;
    scope.flush();
    assert.equal(sent.length, 0);
  });

  test('a newly attached object is an add with all non-null values; its edits merge into it', () => {
    const {scope, sent, rootUUID, shapeUUIDs} = ready();
    const shape = scope.create('Shape', {x: 1, y: 2});
    assert.equal(shape.scope, null);
    scope.root.push('shapes', shape);
    assert.equal(shape.scope, scope);
    shape.width = 30;
    scope.flush();
    assert.deepEqual(sent[0].fragments, [
      {type: 'change', uuid: rootUUID, clsName: 'Canvas', properties: {shapes: [...shapeUUIDs, shape.uuid]}},
      {type: 'add', uuid: shape.uuid, clsName: 'Shape', properties: {x: 1, y: 2, width: 30}},
    ]);
  });

  test('add then remove in one batch cancels out; a move within a batch keeps the object', () => {
    const {scope, sent, rootUUID, shapeUUIDs} = ready();
    const shape = scope.create('Shape', {x: 1});
    scope.root.push('shapes', shape);
    scope.root.pull('shapes', shape);
    scope.flush();
    assert.equal(sent.length, 0);
    assert.equal(shape.scope, null);

    const s1 = scope.get(shapeUUIDs[0]);
    scope.root.pull('shapes', s1);
    scope.root.push('shapes', s1);
    scope.flush();
    assert.equal(s1.scope, scope);
    assert.deepEqual(sent[0].fragments, [
      {type: 'change', uuid: rootUUID, clsName: 'Canvas', properties: {shapes: [shapeUUIDs[1], shapeUUIDs[0]]}},
    ]);
  });

  test('removal detaches at the end of the batch', () => {
    const {scope, sent, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    const detached = [];
    scope.on('detach', (e) => detached.push(e.object));
    s1.detach();
    assert.equal(s1.scope, scope, 'still in the scope until the batch ends');
    scope.flush();
    assert.deepEqual(detached, [s1]);
    assert.equal(sent[0].fragments.length, 1);
  });

  test('the batch is sent by the timer', async () => {
    const o = offlineScope({changeInterval: 10});
    const state = canvasState(1);
    o.scope._applyState(state.rootUUID, state.fragments);
    o.scope.get(state.shapeUUIDs[0]).x = 5;
    o.scope.get(state.shapeUUIDs[0]).y = 6;
    assert.equal(o.sent.length, 0);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(o.sent.length, 1);
    assert.equal(o.sent[0].fragments.length, 1);
  });

  test('objects of another scope are refused', () => {
    const schema = demoSchema();
    const a = ready(schema);
    const b = ready(schema);
    assert.throws(() => a.scope.root.push('shapes', b.scope.get(b.shapeUUIDs[0])), /another scope/);
  });
});

describe('Scope: replies and reverts', () => {
  function ready() {
    const o = offlineScope();
    const state = canvasState(2);
    o.scope._applyState(state.rootUUID, state.fragments);
    return {...o, ...state};
  }

  test('all accepted → completed; modifications applied', async () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 500;
    const done = scope.flush();
    reply(sent[0], [{modifications: {x: 400}}]);
    const result = await done;
    assert.equal(result.status, ChangeSetStatus.COMPLETED);
    assert.equal(s1.x, 400);
  });

  test('a rejected fragment reverts its properties only', async () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const [s1, s2] = shapeUUIDs.map((u) => scope.get(u));
    s1.x = 11;
    s2.x = 22;
    const done = scope.flush();
    const reverts = [];
    scope.on('revert', (e) => reverts.push(e));
    reply(sent[0], [{error: {message: 'Not valid'}}, {}]);
    const result = await done;
    assert.equal(result.status, ChangeSetStatus.PARTIALLY_REVERTED);
    assert.equal(s1.x, 10);
    assert.equal(s2.x, 22);
    assert.equal(reverts.length, 1);
    assert.equal(reverts[0].errors[0].error.message, 'Not valid');
    assert.equal(reverts[0].errors[0].object, s1);
  });

  test('a reply with a different fragment count reverts the whole changeset', async () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const [s1, s2] = shapeUUIDs.map((u) => scope.get(u));
    s1.x = 11;
    s2.x = 22;
    const done = scope.flush();
    reply(sent[0], [{}]);
    assert.equal((await done).status, ChangeSetStatus.REVERTED);
    assert.equal(s1.x, 10);
    assert.equal(s2.x, 20);
  });

  test('a non-ScopeSyncReply reply reverts everything', async () => {
    const {scope, sent, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 11;
    const done = scope.flush();
    scope._onReply(sent[0], {type: 'Reply', index: 3, replyTo: 1});
    assert.equal((await done).status, ChangeSetStatus.REVERTED);
    assert.equal(s1.x, 10);
  });

  test('a key touched by a later change is not reverted; the later change is rebased', async () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 11;
    scope.flush();
    s1.x = 12;
    scope.flush();
    reply(sent[0], [{error: {message: 'no'}}]);
    assert.equal(s1.x, 12, 'the later change stays');
    reply(sent[1], [{error: {message: 'no again'}}]);
    assert.equal(s1.x, 10, 'both rejected: back to the original value');
  });

  test('a pending (unsent) change also protects its keys from a revert', () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 11;
    scope.flush();
    s1.x = 12;  // pending, not flushed
    reply(sent[0], [{error: {message: 'no'}}]);
    assert.equal(s1.x, 12);
    scope.discardPendingChanges();
    assert.equal(s1.x, 10, 'the rebased original is the value before the rejected change');
  });

  test('a rejected add removes the new object again', async () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const shape = scope.create('Shape', {x: 1});
    scope.root.push('shapes', shape);
    scope.flush();
    reply(sent[0], [{error: {message: 'bad parent'}}, {error: {message: 'bad add'}}]);
    assert.equal(shape.scope, null);
    assert.deepEqual(scope.root.shapes.map((s) => s.uuid), shapeUUIDs);
  });

  test('a rejected removal brings the object back', () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.detach();
    scope.flush();
    assert.equal(s1.scope, null);
    reply(sent[0], [{error: {message: 'no'}}]);
    assert.equal(s1.scope, scope);
    assert.equal(scope.root.shapes[0], s1);
  });

  test('remote changes to keys with unconfirmed local changes keep the local value; a revert goes to the remote value', () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    s1.x = 11;
    scope.flush();
    scope._applySync([{type: 'change', uuid: s1.uuid, clsName: 'Shape', properties: {x: 77, y: 88}}]);
    assert.equal(s1.x, 11);
    assert.equal(s1.y, 88);
    reply(sent[0], [{error: {message: 'no'}}]);
    assert.equal(s1.x, 77);
  });

  test('modifyAtomically sends atomic:true and reverts all on rejection', async () => {
    const {scope, sent, reply, shapeUUIDs} = ready();
    const [s1, s2] = shapeUUIDs.map((u) => scope.get(u));
    s1.y = 1;  // before: sent separately
    const done = scope.modifyAtomically(() => {
      s1.x = 100;
      s2.x = 200;
    });
    assert.equal(sent.length, 2);
    assert.equal(sent[0].atomic, false);
    assert.equal(sent[1].atomic, true);
    reply(sent[0], [{}]);
    reply(sent[1], [
      {error: {message: 'Not valid'}},
      {error: {message: 'Atomic changeset rejected: fragment 0 failed: Not valid', type: 'atomic-changeset-rejected'}},
    ]);
    assert.equal((await done).status, ChangeSetStatus.REVERTED);
    assert.equal(s1.x, 10);
    assert.equal(s2.x, 20);
    assert.equal(s1.y, 1);
  });

  test('modifyAtomically: an exception discards the changes', () => {
    const {scope, sent, shapeUUIDs} = ready();
    const s1 = scope.get(shapeUUIDs[0]);
    assert.throws(() =>
      scope.modifyAtomically(() => {
        s1.x = 100;
        throw new Error('boom');
      }),
    );
    assert.equal(s1.x, 10);
    scope.flush();
    assert.equal(sent.length, 0);
  });
});
