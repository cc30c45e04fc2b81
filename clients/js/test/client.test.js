// The Client's protocol handling against a scripted fake WebSocket: message
// indexes, duplicates and gaps, acks and resends, resume, session restart.

import {test, describe, afterEach} from 'node:test';
import assert from 'node:assert/strict';

import {Client, JetstreamError, Status, backoffDelay} from '../src/index.js';
import {demoSchemaJson, canvasState} from './helpers/fixtures.js';

class FakeWebSocket {
  static instances = [];
  static waiters = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.instances.push(this);
    for (const resolve of FakeWebSocket.waiters.splice(0)) resolve(this);
  }

  // The next socket the client opens (reconnects wait a jittered delay).
  static next() {
    return new Promise((resolve) => FakeWebSocket.waiters.push(resolve));
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedWith = {code, reason};
    queueMicrotask(() => this.onclose && this.onclose({code, reason}));
  }

  // ---- the "server" side ----
  open() {
    this.readyState = 1;
    this.onopen && this.onopen({});
  }

  receive(...messages) {
    this.onmessage({data: JSON.stringify(messages)});
  }

  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose && this.onclose({code, reason});
  }

  static last() {
    return FakeWebSocket.instances.at(-1);
  }
}

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const clients = [];

function makeClient(options = {}) {
  const client = new Client({
    url: 'ws://server.test:3000',
    schema: demoSchemaJson(),
    WebSocket: FakeWebSocket,
    reconnectDelay: 1,
    ...options,
  });
  clients.push(client);
  return client;
}

// A client with a session and the Canvas scope fetched (server index 2).
async function established(options = {}) {
  const client = makeClient(options);
  const connected = client.connect();
  const ws = FakeWebSocket.last();
  ws.open();
  ws.receive({type: 'SessionCreateReply', index: 0, sessionToken: 'TOKEN1'});
  await connected;
  const fetched = client.fetch('Canvas', {p: 1});
  await tick();
  const state = canvasState(1);
  ws.receive(
    {type: 'ScopeFetchReply', index: 1, replyTo: 1, scopeIndex: 0},
    {type: 'ScopeState', index: 2, scopeIndex: 0, rootUUID: state.rootUUID, fragments: state.fragments},
  );
  const scope = await fetched;
  return {client, ws, scope, state};
}

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  FakeWebSocket.instances = [];
  FakeWebSocket.waiters = [];
});

describe('Client protocol handling', () => {
  test('SessionCreate first (index 0, version, params); status connecting → online', async () => {
    const client = makeClient({params: {accessToken: 'abc'}, version: '0.1.0'});
    const statuses = [];
    client.on('status', (s) => statuses.push(s));
    const connected = client.connect();
    const ws = FakeWebSocket.last();
    assert.equal(ws.url, 'ws://server.test:3000');
    ws.open();
    assert.deepEqual(ws.sent, [{type: 'SessionCreate', index: 0, version: '0.1.0', params: {accessToken: 'abc'}}]);
    ws.receive({type: 'SessionCreateReply', index: 0, sessionToken: 'T'});
    await connected;
    assert.deepEqual(statuses, ['connecting', 'online']);
    assert.equal(client.sessionToken, 'T');
  });

  test('a denied session rejects connect() and does not retry', async () => {
    const client = makeClient();
    const denied = [];
    client.on('sessionDenied', (e) => denied.push(e));
    client.on('error', () => {});
    const connected = client.connect();
    const ws = FakeWebSocket.last();
    ws.open();
    ws.receive({type: 'SessionCreateReply', index: 0, error: {message: 'Session creation denied'}});
    await assert.rejects(connected, /Session creation denied/);
    assert.equal(denied.length, 1);
    await tick(20);
    assert.equal(FakeWebSocket.instances.length, 1);
    assert.equal(client.status, Status.OFFLINE);
  });

  test('client messages are numbered from 1; the fetch resolves after the state', async () => {
    const {ws, scope, state} = await established();
    assert.deepEqual(ws.sent[1], {type: 'ScopeFetch', index: 1, name: 'Canvas', params: {p: 1}});
    assert.equal(scope.root.uuid, state.rootUUID);
    scope.root.name = 'x';
    scope.flush();
    assert.equal(ws.sent[2].type, 'ScopeSync');
    assert.equal(ws.sent[2].index, 2);
    assert.equal(ws.sent[2].scopeIndex, 0);
    assert.equal('atomic' in ws.sent[2], false);
  });

  test('server messages with an index already seen are ignored', async () => {
    const {ws, scope, state} = await established();
    const change = (index, name) => ({
      type: 'ScopeSync', index, scopeIndex: 0,
      fragments: [{type: 'change', uuid: state.rootUUID, clsName: 'Canvas', properties: {name}}],
    });
    ws.receive(change(3, 'three'));
    assert.equal(scope.root.name, 'three');
    ws.receive(change(3, 'again'), change(2, 'old'));
    assert.equal(scope.root.name, 'three');
    ws.receive(change(4, 'four'));
    assert.equal(scope.root.name, 'four');
  });

  test('a gap closes the socket and resumes with the token; nothing new is sent before the resend', async () => {
    const {client, ws, scope, state} = await established();
    ws.receive({type: 'ScopeSync', index: 5, scopeIndex: 0, fragments: []});
    assert.ok(ws.closedWith, 'socket closed');
    await tick(5);
    const ws2 = FakeWebSocket.last();
    assert.notEqual(ws2, ws);
    assert.equal(new URL(ws2.url).searchParams.get('x-jetstream-sessiontoken'), 'TOKEN1');
    ws2.open();
    assert.deepEqual(ws2.sent, [{type: 'Ping', index: 0, ack: 2, resendMissing: true}]);
    assert.equal(client.status, Status.CONNECTING);

    // A local change while resyncing waits.
    scope.root.name = 'while resyncing';
    scope.flush();
    assert.equal(ws2.sent.length, 1);

    // The server has everything up to 1 (SessionCreate was 0, fetch 1):
    // resend 2 (the ScopeSync); then the missed messages.
    ws2.receive(
      {type: 'Ping', index: 0, ack: 1, resendMissing: true},
      {type: 'ScopeSync', index: 3, scopeIndex: 0,
        fragments: [{type: 'change', uuid: state.rootUUID, clsName: 'Canvas', properties: {shapes: []}}]},
    );
    assert.equal(client.status, Status.ONLINE);
    assert.deepEqual(ws2.sent.slice(1).map((m) => [m.type, m.index]), [['ScopeSync', 2]]);
    assert.deepEqual(scope.root.shapes, []);
    assert.equal(client.sessionToken, 'TOKEN1');
  });

  test('acks prune the resend buffer; a Ping without resendMissing resends nothing', async () => {
    const {client, ws, scope} = await established();
    scope.root.name = 'a';
    scope.flush();
    assert.deepEqual(client._nonAcked.map((e) => e.index), [1, 2]);
    ws.receive({type: 'Ping', index: 0, ack: 1, resendMissing: false});
    assert.deepEqual(client._nonAcked.map((e) => e.index), [2]);
    assert.equal(ws.sent.length, 3);
    ws.receive({type: 'Ping', index: 0, ack: 1, resendMissing: true});
    assert.deepEqual(ws.sent.slice(3).map((m) => m.index), [2]);
  });

  test('pings every interval carry the last server index', async () => {
    const {ws} = await established({pingInterval: 30, pingJitter: 5});
    await tick(120);
    const pings = ws.sent.filter((m) => m.type === 'Ping');
    assert.ok(pings.length >= 2, `got ${pings.length} pings`);
    assert.deepEqual(pings[0], {type: 'Ping', index: 0, ack: 2, resendMissing: false});
  });

  test('close code 4097: new session (no token), every scope fetched again with its params', async () => {
    const {client, ws, scope, state} = await established();
    const root = scope.root;
    const events = [];
    client.on('sessionLost', (e) => events.push(['lost', e.code]));
    client.on('session', (e) => events.push(['session', e.restarted]));
    scope.root.name = 'in flight';
    const inflight = scope.flush();
    const reconnected = FakeWebSocket.next();
    ws.serverClose(4097, '');
    const ws2 = await reconnected;
    assert.notEqual(ws2, ws);
    assert.equal(new URL(ws2.url).searchParams.has('x-jetstream-sessiontoken'), false);
    ws2.open();
    assert.equal(ws2.sent[0].type, 'SessionCreate');
    ws2.receive({type: 'SessionCreateReply', index: 0, sessionToken: 'TOKEN2'});
    assert.deepEqual(ws2.sent[1], {type: 'ScopeFetch', index: 1, name: 'Canvas', params: {p: 1}});
    assert.equal((await inflight).status, 'lost');
    const fresh = canvasState(0);
    ws2.receive(
      {type: 'ScopeFetchReply', index: 1, replyTo: 1, scopeIndex: 0},
      {type: 'ScopeState', index: 2, scopeIndex: 0, rootUUID: state.rootUUID,
        fragments: [{...fresh.fragments[0], uuid: state.rootUUID}]},
    );
    assert.deepEqual(events, [['lost', 4097], ['session', true]]);
    assert.equal(scope.root, root);
    assert.equal(scope.root.name, 'Shapes Demo');
    assert.deepEqual(scope.root.shapes, []);
    assert.equal(client.sessionToken, 'TOKEN2');
  });

  test('a ScopeFetchReply with an error rejects the fetch without breaking the session', async () => {
    const {client, ws} = await established();
    const errors = [];
    client.on('error', (e) => errors.push(e));
    const fetching = client.fetch('Nope');
    await tick();
    ws.receive({type: 'ScopeFetchReply', index: 3, replyTo: 2, error: {message: 'No such scope'}});
    await assert.rejects(fetching, (e) => e instanceof JetstreamError && e.message === 'No such scope');
    assert.equal(errors.length, 1);
    assert.deepEqual(client.scopes.map((s) => s.name), ['Canvas']);
    ws.receive({type: 'ScopeSync', index: 4, scopeIndex: 0, fragments: []});
    assert.equal(client._serverIndex, 4);
  });

  test('malformed frames and messages do not throw', async () => {
    const {client, ws} = await established();
    client.on('error', () => {});
    ws.onmessage({data: 'not json'});
    ws.receive(null, 5, {type: 'ScopeState', index: 3, scopeIndex: 0, rootUUID: 'bad', fragments: 'x'});
    ws.receive({type: 'ScopeSync', index: 4, scopeIndex: 9, fragments: [{type: 'add'}]});
    assert.equal(client._serverIndex, 4);
    assert.equal(client.status, Status.ONLINE);
  });
});

describe('Reconnect backoff', () => {
  test('each wait is uniform in [0, cap): full jitter over an exponential cap', () => {
    const at = (value) => () => value;
    // The cap doubles from the base up to the maximum...
    assert.equal(backoffDelay(0, 100, 5000, at(0.999999)), 99);
    assert.equal(backoffDelay(3, 100, 5000, at(0.999999)), 799);
    assert.equal(backoffDelay(10, 100, 5000, at(0.999999)), 4999);
    // ...and the wait is anywhere below it, so clients cut off together
    // (a gateway draining) come back spread out.
    assert.equal(backoffDelay(3, 100, 5000, at(0)), 0);
    assert.equal(backoffDelay(3, 100, 5000, at(0.5)), 400);
    const waits = new Set();
    for (let i = 0; i < 50; i++) waits.add(backoffDelay(4, 100, 5000));
    assert.ok(waits.size > 10, `waits not spread: ${[...waits]}`);
    for (const w of waits) assert.ok(w >= 0 && w < 1600, `wait ${w}`);
  });
});
