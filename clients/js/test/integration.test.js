// The client against the REAL gateway and sync service binaries.

import {test, describe, before, after, afterEach} from 'node:test';
import assert from 'node:assert/strict';

import {Client, JetstreamError, Schema, ChangeSetStatus, Status} from '../src/index.js';
import {demoSchemaJson} from './helpers/fixtures.js';
import {startServers, waitFor, nextEvent} from './helpers/servers.js';

let counter = 0;
const uniqueCanvas = () => `canvas/t${process.pid}-${Date.now()}-${++counter}`;
const uniqueChat = () => `chat/t${process.pid}-${Date.now()}-${++counter}`;

function makeClientFactory(getUrl) {
  const clients = [];
  const make = (options = {}) => {
    const client = new Client({url: getUrl(), schema: demoSchemaJson(), ...options});
    clients.push(client);
    return client;
  };
  const closeAll = () => {
    for (const c of clients.splice(0)) c.close();
  };
  return {make, closeAll};
}

describe('jetstream-client against the gateway', () => {
  let servers;
  const {make, closeAll} = makeClientFactory(() => servers.wsUrl);

  before(async () => {
    servers = await startServers();
  });
  afterEach(() => closeAll());
  after(async () => {
    closeAll();
    if (servers) await servers.stop();
  });

  test('session + fetch builds the tree (Canvas and ChatRoom)', async () => {
    const client = make();
    const statuses = [];
    client.on('status', (s) => statuses.push(s));
    await client.connect();
    assert.equal(client.status, Status.ONLINE);
    assert.match(client.sessionToken, /^[0-9A-Za-z]+$/);
    assert.deepEqual(statuses, ['connecting', 'online']);

    const canvas = await client.fetch('Canvas');
    assert.equal(canvas.root.clsName, 'Canvas');
    assert.equal(canvas.root.name, 'Shapes Demo');
    assert.ok(Array.isArray(canvas.root.shapes));
    assert.equal(canvas.scopeIndex, 0);

    const chat = await client.fetch('ChatRoom');
    assert.equal(chat.scopeIndex, 1);
    assert.equal(chat.root.name, 'Chat Demo');
    const attributes = chat.root.attributes;
    assert.equal(attributes.clsName, 'ChatRoomAttributes');
    assert.equal(attributes.topic, 'Welcome');
    assert.equal(attributes.status, 0);
    assert.deepEqual(attributes.parents, [{parent: chat.root, key: 'attributes'}]);
    assert.equal(chat.get(attributes.uuid), attributes);
  });

  test('fetch without connect() connects first', async () => {
    const client = make();
    const scope = await client.fetch(uniqueCanvas());
    assert.equal(scope.root.name, 'Canvas');
    assert.equal(client.status, Status.ONLINE);
  });

  test('two clients: changes in one reach the other', async () => {
    const name = uniqueCanvas();
    const a = make();
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);

    const shape = sa.create('Shape', {x: 10, y: 20, width: 100, height: 50, color: 0xff0000ff});
    sa.root.push('shapes', shape);
    const result = await sa.flush();
    assert.ok(['completed', 'empty'].includes(result.status));
    await waitFor(() => sb.get(shape.uuid), {what: 'the shape in B'});
    const remote = sb.get(shape.uuid);
    assert.deepEqual(remote.values(), {x: 10, y: 20, width: 100, height: 50, color: 0xff0000ff});
    assert.deepEqual(sb.root.shapes, [remote]);

    const changes = [];
    remote.on('change', (e) => changes.push(e));
    shape.x = 300;
    shape.y = 301;
    await waitFor(() => remote.x === 300 && remote.y === 301, {what: 'the move in B'});
    assert.equal(changes.at(-1).source, 'remote');

    remote.color = 0x00ff00ff;
    await waitFor(() => shape.color === 0x00ff00ff, {what: 'the recolour in A'});
  });

  test('chat: users and messages with dates and references', async () => {
    const name = uniqueChat();
    const a = make();
    const b = make();
    const [ca, cb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const user = ca.create('User', {username: 'ann', color: 0x3366ffff, lastActive: new Date(1700000000123)});
    ca.root.push('users', user);
    const message = ca.create('Message', {author: user, postedAt: new Date(1700000001500), text: 'hello'});
    ca.root.push('messages', message);
    ca.root.attributes.topic = 'Testing';
    assert.equal((await ca.flush()).status, ChangeSetStatus.COMPLETED);
    await waitFor(() => cb.root.messages.length === 1 && cb.root.attributes.topic === 'Testing');
    const m = cb.root.messages[0];
    assert.equal(m.text, 'hello');
    assert.equal(m.author, cb.root.users[0]);
    assert.equal(m.author.username, 'ann');
    assert.equal(m.postedAt.getTime(), 1700000001500);
    assert.equal(m.author.lastActive.getTime(), 1700000000123);

    // A late joiner gets the same values from the ScopeState.
    const c = make();
    const cc = await c.fetch(name);
    assert.equal(cc.root.messages[0].postedAt.getTime(), 1700000001500);
    assert.equal(cc.root.attributes.topic, 'Testing');
  });

  test('add/remove shapes: orphans leave the scope on both sides', async () => {
    const name = uniqueCanvas();
    const a = make();
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const s1 = sa.create('Shape', {x: 1, y: 1});
    const s2 = sa.create('Shape', {x: 2, y: 2});
    sa.root.shapes = [s1, s2];
    await sa.flush();
    await waitFor(() => sb.root.shapes.length === 2);
    const remote1 = sb.get(s1.uuid);
    const detached = nextEvent(sb, 'detach');

    s1.detach();
    await sa.flush();
    assert.equal(s1.scope, null);
    assert.equal(sa.get(s1.uuid), undefined);
    assert.equal((await detached).object, remote1);
    assert.equal(remote1.scope, null);
    assert.deepEqual(sb.root.shapes.map((s) => s.uuid), [s2.uuid]);

    // The server dropped it too: a fresh fetch does not have it.
    const c = make();
    const sc = await c.fetch(name);
    assert.deepEqual(sc.objectsOf('Shape').map((s) => s.uuid), [s2.uuid]);

    // Moving an object between parents within one batch keeps it.
    const chat = await a.fetch(uniqueChat());
    const user = chat.create('User', {username: 'bob'});
    chat.root.push('users', user);
    await chat.flush();
    chat.root.pull('users', user);
    chat.root.push('messages', chat.create('Message', {author: user, text: 'moved', postedAt: new Date()}));
    assert.equal((await chat.flush()).status, ChangeSetStatus.COMPLETED);
    assert.equal(user.scope, chat, 'still referenced by the message');
  });

  test('a rejected fragment (wrong type) reverts locally and never reaches others', async () => {
    const name = uniqueCanvas();
    const a = make();
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const shape = sa.create('Shape', {x: 5, y: 5});
    sa.root.push('shapes', shape);
    await sa.flush();
    await waitFor(() => sb.get(shape.uuid));

    const reverted = nextEvent(sa, 'revert');
    shape.unsafeSet('x', 'left');
    const other = sa.root;  // a good fragment in the same changeset
    other.name = 'renamed';
    const result = await sa.flush();
    assert.equal(result.status, ChangeSetStatus.PARTIALLY_REVERTED);
    const event = await reverted;
    assert.equal(event.errors.length, 1);
    assert.equal(event.errors[0].object, shape);
    assert.equal(event.errors[0].error.message, "Not valid type at 'x', should be Number");
    assert.equal(shape.x, 5, 'reverted');
    assert.equal(other.name, 'renamed', 'the accepted fragment stays');
    await waitFor(() => sb.root.name === 'renamed');
    assert.equal(sb.get(shape.uuid).x, 5);
  });

  test('a property the server schema lacks is rejected and reverted', async () => {
    const json = demoSchemaJson();
    json.models.Shape.properties.label = 'String';
    const a = make({schema: new Schema(json)});
    const scope = await a.fetch(uniqueCanvas());
    const shape = scope.create('Shape', {x: 1, y: 1});
    scope.root.push('shapes', shape);
    await scope.flush();
    shape.label = 'hello';
    const result = await scope.flush();
    assert.equal(result.status, ChangeSetStatus.REVERTED);
    assert.equal(result.errors[0].error.message, "No property at 'label'");
    assert.equal(shape.label, null);
  });

  test('atomic changeset: one bad fragment rejects and reverts all of them', async () => {
    const name = uniqueCanvas();
    const a = make();
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const s1 = sa.create('Shape', {x: 1, y: 1});
    const s2 = sa.create('Shape', {x: 2, y: 2});
    sa.root.shapes = [s1, s2];
    await sa.flush();
    await waitFor(() => sb.root.shapes.length === 2);

    const s3 = sa.create('Shape', {x: 3, y: 3});
    const result = await sa.modifyAtomically(() => {
      s1.x = 100;
      s2.unsafeSet('y', 'bad');
      sa.root.push('shapes', s3);
    });
    assert.equal(result.status, ChangeSetStatus.REVERTED);
    assert.equal(result.changeSet.atomic, true);
    const types = result.errors.map((e) => e.error.type);
    assert.ok(types.includes('atomic-changeset-rejected'), JSON.stringify(result.errors));
    assert.equal(s1.x, 1);
    assert.equal(s2.y, 2);
    assert.equal(s3.scope, null);
    assert.deepEqual(sa.root.shapes, [s1, s2]);
    // Nothing was applied or broadcast: B's next change is still on the old state.
    sb.get(s1.uuid).width = 42;
    await waitFor(() => s1.width === 42);
    assert.equal(sb.get(s1.uuid).x, 1);
    assert.equal(sb.root.shapes.length, 2);

    // The same changes without the bad one go through atomically.
    const ok = await sa.modifyAtomically(() => {
      s1.x = 100;
      sa.root.push('shapes', s3);
    });
    assert.equal(ok.status, ChangeSetStatus.COMPLETED);
    await waitFor(() => sb.get(s1.uuid).x === 100 && sb.root.shapes.length === 3);
  });

  test('resume after the socket is terminated: missed changes arrive, same session', async () => {
    const name = uniqueCanvas();
    const a = make({reconnectDelay: 300});
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const shape = sb.create('Shape', {x: 1, y: 1});
    sb.root.push('shapes', shape);
    await sb.flush();
    await waitFor(() => sa.get(shape.uuid));
    const token = a.sessionToken;

    const offline = nextEvent(a, 'status', {filter: (s) => s === 'offline'});
    a.socket.terminate();  // the 'ws' socket: drop the TCP connection
    await offline;
    shape.x = 222;  // B changes while A is away
    shape.y = 333;
    await sb.flush();
    await waitFor(() => a.status === Status.ONLINE, {what: 'A back online'});
    await waitFor(() => sa.get(shape.uuid).x === 222 && sa.get(shape.uuid).y === 333, {what: 'missed change'});
    assert.equal(a.sessionToken, token, 'the session was resumed, not replaced');
  });

  test('resume: changes made while offline are sent after reconnecting; changes missed arrive', async () => {
    const name = uniqueCanvas();
    const a = make();
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const token = a.sessionToken;
    a.disconnect();
    assert.equal(a.status, Status.OFFLINE);

    const fromB = sb.create('Shape', {x: 7, y: 7});
    sb.root.push('shapes', fromB);
    await sb.flush();

    sa.root.name = 'named while offline';
    const pending = sa.flush();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(sb.root.name, 'Canvas');

    a.reconnect();
    const result = await pending;
    assert.equal(result.status, ChangeSetStatus.COMPLETED);
    await waitFor(() => sb.root.name === 'named while offline');
    await waitFor(() => sa.get(fromB.uuid) && sa.root.shapes.length === 1);
    assert.equal(a.sessionToken, token);
  });

  test('an index gap makes the client reconnect and recover', async () => {
    const name = uniqueCanvas();
    const a = make();
    const b = make();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const token = a.sessionToken;
    const offline = nextEvent(a, 'status', {filter: (s) => s === 'offline'});
    a._onFrame(JSON.stringify([{type: 'ScopeSync', index: a._serverIndex + 2, scopeIndex: 0, fragments: []}]));
    await offline;
    await waitFor(() => a.status === Status.ONLINE);
    sb.root.name = 'after gap';
    await waitFor(() => sa.root.name === 'after gap');
    assert.equal(a.sessionToken, token);
  });

  test('ScopeFetch of an unknown scope: error surfaced, no crash, client still usable', async () => {
    const client = make();
    const errors = [];
    client.on('error', (e) => errors.push(e));
    await assert.rejects(client.fetch('NoSuchScope'), (error) => {
      assert.ok(error instanceof JetstreamError);
      assert.equal(error.message, 'No such scope');
      return true;
    });
    assert.equal(errors.length, 1);
    assert.equal(client.scopes.length, 0);
    const canvas = await client.fetch('Canvas');
    assert.equal(canvas.root.name, 'Shapes Demo');
    assert.equal(client.status, Status.ONLINE);
  });
});

describe('jetstream-client: session expiry, keep-alive', () => {
  let servers;
  const {make, closeAll} = makeClientFactory(() => servers.wsUrl);

  before(async () => {
    servers = await startServers({gatewayArgs: ['--session_expiry=1s', '--ping_interval=300ms', '--ping_jitter=50ms']});
  });
  afterEach(() => closeAll());
  after(async () => {
    closeAll();
    if (servers) await servers.stop();
  });

  // B pings often enough to keep its session.
  const keeper = () => make({pingInterval: 250, pingJitter: 0});

  test('4097 on expiry: a new session re-fetches every scope with its params', async () => {
    const name = uniqueCanvas();
    const chatName = uniqueChat();
    const a = make();  // pings every ~10 s: its session expires after 1 s
    const b = keeper();
    const [sa, sb] = await Promise.all([a.fetch(name, {note: 'p'}), b.fetch(name)]);
    const chat = await a.fetch(chatName);
    const root = sa.root;
    const token = a.sessionToken;
    const fetched = [];
    a.on('message', (m) => {
      if (m.type === 'ScopeFetchReply') fetched.push(m);
    });
    const sentFetches = [];
    const lost = nextEvent(a, 'sessionLost', {timeoutMs: 5000});
    const session = nextEvent(a, 'session', {filter: (s) => s.restarted, timeoutMs: 8000});
    const stateAgain = nextEvent(sa, 'state', {timeoutMs: 8000});
    const origSend = a._send.bind(a);
    a._send = (type, body, onReply) => {
      if (type === 'ScopeFetch') sentFetches.push(body);
      return origSend(type, body, onReply);
    };
    assert.equal((await lost).code, 4097);
    await session;
    // From now on A keeps its new session alive (no second expiry mid-test).
    a.pingInterval = 250;
    a.pingJitter = 0;
    a._startPing();
    await stateAgain;
    assert.notEqual(a.sessionToken, token);
    assert.deepEqual(sentFetches.map((f) => [f.name, f.params]), [[name, {note: 'p'}], [chatName, {}]]);
    assert.equal(sa.root, root, 'the same Scope and root objects stay in use');
    assert.equal(chat.ready, true);

    // Changes flow again in both directions on the new session.
    sb.root.name = 'from B after restart';
    await waitFor(() => sa.root.name === 'from B after restart');
    const shape = sa.create('Shape', {x: 9, y: 9});
    sa.root.push('shapes', shape);
    assert.equal((await sa.flush()).status, ChangeSetStatus.COMPLETED);
    await waitFor(() => sb.get(shape.uuid));
  });

  test('expired while away: 4096 on resume, new session, state re-fetched correctly', async () => {
    const name = uniqueCanvas();
    const a = keeper();
    const b = keeper();
    const [sa, sb] = await Promise.all([a.fetch(name), b.fetch(name)]);
    const s1 = sb.create('Shape', {x: 1, y: 1});
    const s2 = sb.create('Shape', {x: 2, y: 2});
    sb.root.shapes = [s1, s2];
    await sb.flush();
    await waitFor(() => sa.root.shapes.length === 2);
    const localS1 = sa.get(s1.uuid);

    a.disconnect();
    // While A is away: s1 is removed, s2 moved, s3 added.
    const s3 = sb.create('Shape', {x: 3, y: 3});
    sb.root.shapes = [s2, s3];
    s2.x = 200;
    await sb.flush();
    await new Promise((r) => setTimeout(r, 1600));  // A's session expires

    const lost = nextEvent(a, 'sessionLost');
    const state = nextEvent(sa, 'state', {timeoutMs: 5000});
    a.reconnect();
    const {code, error} = await lost;
    assert.equal(code, 4096);
    assert.equal(error.type, 'session-token-unrecognized');
    await state;
    assert.deepEqual(sa.root.shapes.map((s) => s.uuid), [s2.uuid, s3.uuid]);
    assert.equal(sa.get(s2.uuid).x, 200);
    assert.equal(localS1.scope, null, 'objects missing from the new state are detached');
    assert.equal(a.status, Status.ONLINE);
  });

  test('pings carry acks; server acks prune the resend buffer', async () => {
    const a = keeper();
    const sent = [];
    await a.connect();
    const ws = a.socket;
    const origSend = ws.send.bind(ws);
    ws.send = (text, ...rest) => {
      sent.push(JSON.parse(text));
      return origSend(text, ...rest);
    };
    const scope = await a.fetch(uniqueCanvas());
    scope.root.name = 'x';
    await scope.flush();
    await waitFor(() => sent.some((m) => m.type === 'Ping' && m.ack >= 3), {what: 'a client ping with ack'});
    const ping = sent.find((m) => m.type === 'Ping');
    assert.deepEqual(Object.keys(ping).sort(), ['ack', 'index', 'resendMissing', 'type']);
    assert.equal(ping.index, 0);
    assert.equal(ping.resendMissing, false);
    await waitFor(() => a._nonAcked.length === 0, {what: 'the server acknowledging everything'});
    assert.deepEqual(sent.filter((m) => m.index > 0).map((m) => m.index), [1, 2]);
  });
});

describe('jetstream-client: denied handshake', () => {
  test('a server that is not there: offline, retries, close() stops', async () => {
    const client = new Client({url: 'ws://127.0.0.1:9', schema: demoSchemaJson(), reconnectDelay: 20, maxReconnectDelay: 40});
    const statuses = [];
    client.on('status', (s) => statuses.push(s));
    const connecting = client.connect();
    await waitFor(() => statuses.filter((s) => s === 'offline').length >= 2, {what: 'two failed attempts'});
    client.close();
    await assert.rejects(connecting, /closed/);
    assert.equal(client.status, Status.OFFLINE);
  });
});
