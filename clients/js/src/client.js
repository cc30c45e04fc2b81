// The connection to a Jetstream server: session, sequencing, acks, resends,
// resume and session restart (docs/protocol.md#sequencing,
// docs/protocol.md#sessions, docs/protocol.md#clients).
//
// Events:
//   'status'        'connecting' | 'online' | 'offline'
//   'session'       {token, restarted}        a session was created
//   'sessionLost'   {code, reason}             the server ended the session (4096/4097)
//   'sessionDenied' JetstreamError             SessionCreate was refused
//   'disconnect'    {code, reason}             the socket closed
//   'error'         Error                      anything that went wrong and was handled
//   'message'       message                    every message received (debugging)

import {Emitter} from './emitter.js';
import {Schema} from './schema.js';
import {Scope} from './scope.js';
import {JetstreamError} from './errors.js';

export const Status = Object.freeze({
  OFFLINE: 'offline',
  CONNECTING: 'connecting',
  ONLINE: 'online',
});

// Close codes of the server (docs/protocol.md#close-codes).
export const CLOSE_DENIED_CONNECTION = 4096;
export const CLOSE_CLOSED_CONNECTION = 4097;

// The wait before reconnect attempt `attempt` (0, 1, ...): exponential
// backoff from `base` ms, capped at `max`, with full jitter (uniform in
// [0, cap) by `random`), so clients that lost their connection together do
// not come back together.
export function backoffDelay(attempt, base, max, random = Math.random) {
  const cap = Math.min(max, base * 2 ** attempt);
  return Math.floor(random() * cap);
}

const OPEN = 1;

function withQuery(url, key, value) {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

function parseCloseReason(reason) {
  if (typeof reason !== 'string' || reason === '') return null;
  try {
    return JetstreamError.fromWire(JSON.parse(reason));
  } catch {
    return new JetstreamError(reason);
  }
}

export class Client extends Emitter {
  // options:
  //   url            ws://host:port (any path)                       required
  //   schema         a Schema, or a schema object (demo_schema.json's shape)  required
  //   params         SessionCreate params (e.g. auth)               {}
  //   version        protocol version sent in SessionCreate         '0.2.0'
  //   WebSocket      WebSocket class; default: the global one, else the 'ws' package
  //   pingInterval   ms between pings (+/- pingJitter)              10000
  //   pingJitter     ms                                             1000
  //   changeInterval ms local changes are collected before a ScopeSync  10
  //   reconnectDelay / maxReconnectDelay  ms, exponential backoff   100 / 5000
  //                  with full jitter: each wait is uniform in [0, cap)
  //   random         () => [0, 1), the jitter's source            Math.random
  //   restartSessionOnFatalError  new session + re-fetch on 4096/4097  true
  //   logger         {debug, info, warn} (e.g. console)              none
  constructor(options = {}) {
    super();
    if (!options.url) throw new TypeError('Client needs a url');
    if (!options.schema) throw new TypeError('Client needs a schema');
    this.url = options.url;
    this.schema = options.schema instanceof Schema ? options.schema : new Schema(options.schema);
    this.params = options.params || {};
    this.version = options.version || '0.2.0';
    this.pingInterval = options.pingInterval ?? 10000;
    this.pingJitter = options.pingJitter ?? 1000;
    this.changeInterval = options.changeInterval ?? 10;
    this.reconnectDelay = options.reconnectDelay ?? 100;
    this.maxReconnectDelay = options.maxReconnectDelay ?? 5000;
    this.random = options.random || Math.random;
    this.restartSessionOnFatalError = options.restartSessionOnFatalError ?? true;
    this.logger = options.logger || null;
    this._WS = options.WebSocket || globalThis.WebSocket || null;

    this.status = Status.OFFLINE;
    this._ws = null;
    this._opening = false;
    this._session = null;
    this._clientIndex = 0;
    this._serverIndex = 0;
    this._nonAcked = [];
    this._replyHandlers = new Map();
    this._resyncing = false;
    this._restartPending = false;
    this._scopes = [];
    this._byIndex = new Map();
    this._wantConnected = false;
    this._closed = false;
    this._reconnectTimer = null;
    this._reconnectAttempts = 0;
    this._pingTimer = null;
    this._onlineWaiters = [];
    this._sessionWaiters = [];
  }

  // ---- public API ----

  get sessionToken() {
    return this._session ? this._session.token : null;
  }

  // The underlying WebSocket (for tests and diagnostics).
  get socket() {
    return this._ws;
  }

  get scopes() {
    return [...this._scopes];
  }

  // Connects (and creates a session the first time). Resolves once online;
  // rejects if the session is denied or the client is closed.
  connect() {
    if (this._closed) return Promise.reject(new JetstreamError('Client is closed', 'closed'));
    this._wantConnected = true;
    if (this.status === Status.ONLINE) return Promise.resolve();
    const online = new Promise((resolve, reject) => this._onlineWaiters.push({resolve, reject}));
    if (!this._ws && !this._opening) {
      this._cancelReconnect();
      this._open();
    }
    return online;
  }

  // Fetches a scope: resolves with the Scope once its state has arrived;
  // rejects with a JetstreamError when the server refuses the fetch.
  // Fetching a name again returns the same Scope with a fresh state.
  async fetch(name, params = {}) {
    if (typeof name !== 'string') throw new TypeError('scope name must be a string');
    if (this._closed) throw new JetstreamError('Client is closed', 'closed');
    let scope = this._scopes.find((s) => s.name === name);
    const isNew = !scope;
    if (isNew) {
      scope = new Scope(this, name, params, {schema: this.schema, changeInterval: this.changeInterval});
      this._scopes.push(scope);
    } else {
      scope.params = params;
    }
    const state = scope._waitForState();
    if (!this._session) {
      if (!this._wantConnected || (!this._ws && !this._opening && !this._reconnectTimer)) {
        this.connect().catch(() => {});
      }
      try {
        await new Promise((resolve, reject) => this._sessionWaiters.push({resolve, reject}));
      } catch (error) {
        if (isNew && !scope.ready) this._forgetScope(scope);
        scope._failStateWaiters(error);
        throw error;
      }
    }
    if (!scope._fetchPending) this._sendFetch(scope, isNew);
    return state;
  }

  // Drops the connection but keeps the session: reconnect() resumes it.
  disconnect() {
    this._wantConnected = false;
    this._cancelReconnect();
    this._dropSocket(1000, 'Client disconnected');
    this._setStatus(Status.OFFLINE);
  }

  // Connects again now (resuming the session if there is one).
  reconnect() {
    if (this._closed) return;
    this._wantConnected = true;
    this._cancelReconnect();
    if (this._ws && this._ws.readyState === OPEN) return;
    this._dropSocket(1000, 'Reconnecting');
    this._open();
  }

  // Closes for good.
  close() {
    if (this._closed) return;
    this._closed = true;
    this.disconnect();
    const error = new JetstreamError('Client is closed', 'closed');
    this._rejectWaiters(this._onlineWaiters, error);
    this._rejectWaiters(this._sessionWaiters, error);
    for (const scope of this._scopes) {
      if (scope._flushTimer !== null) {
        clearTimeout(scope._flushTimer);
        scope._flushTimer = null;
      }
      scope._failStateWaiters(error);
    }
  }

  // ---- connection ----

  _log(level, ...args) {
    if (this.logger && typeof this.logger[level] === 'function') this.logger[level]('[jetstream]', ...args);
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', status);
    if (status === Status.ONLINE) {
      const waiters = this._onlineWaiters;
      this._onlineWaiters = [];
      for (const w of waiters) w.resolve();
    }
  }

  _rejectWaiters(waiters, error) {
    const list = waiters.splice(0, waiters.length);
    for (const w of list) w.reject(error);
  }

  _open() {
    if (this._closed || this._ws || this._opening) return;
    if (!this._WS) {
      this._opening = true;
      import('ws')
        .then((m) => {
          this._WS = m.WebSocket || m.default;
        })
        .catch((error) => {
          this.emit('error', new JetstreamError(`No WebSocket implementation: ${error.message}`));
        })
        .finally(() => {
          this._opening = false;
          if (this._WS && this._wantConnected) this._open();
        });
      return;
    }
    const url = this._session ? withQuery(this.url, 'x-jetstream-sessiontoken', this._session.token) : this.url;
    this._setStatus(Status.CONNECTING);
    let ws;
    try {
      ws = new this._WS(url);
    } catch (error) {
      this.emit('error', error);
      this._setStatus(Status.OFFLINE);
      this._scheduleReconnect();
      return;
    }
    this._ws = ws;
    this._log('debug', 'connecting to', url.replace(/(sessiontoken=)[^&]+/, '$1…'));
    ws.onopen = () => {
      if (this._ws === ws) this._onOpen();
    };
    ws.onmessage = (event) => {
      if (this._ws === ws) this._onFrame(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws === ws) this._onClose(event.code, event.reason);
    };
    ws.onerror = () => {
      // A close event follows.
    };
  }

  _onOpen() {
    if (this._session) {
      // Resume (docs/protocol.md#resume): nothing new is sent until the server's Ping reply
      // tells what it has; then every message it has not acknowledged is
      // resent in order.
      this._resyncing = true;
      this._sendRaw({type: 'Ping', index: 0, ack: this._serverIndex, resendMissing: true});
      this._startPing();
    } else {
      this._sendRaw({type: 'SessionCreate', index: 0, version: this.version, params: this.params});
    }
  }

  _onClose(code, reason) {
    this._ws = null;
    this._stopPing();
    this._resyncing = false;
    this._log('debug', 'closed', code, reason);
    this.emit('disconnect', {code, reason});
    if (this._closed) {
      this._setStatus(Status.OFFLINE);
      return;
    }
    if (code === CLOSE_DENIED_CONNECTION || code === CLOSE_CLOSED_CONNECTION) {
      const error = parseCloseReason(reason) ||
        new JetstreamError(code === CLOSE_CLOSED_CONNECTION ? 'Session closed by the server' : 'Connection denied');
      if (this._session) {
        this.emit('sessionLost', {code, reason, error});
        if (this.restartSessionOnFatalError) {
          this._restartSession();
          return;
        }
        this._endSession();
      }
      this._wantConnected = false;
      this._setStatus(Status.OFFLINE);
      this.emit('error', error);
      this._rejectWaiters(this._onlineWaiters, error);
      this._rejectWaiters(this._sessionWaiters, error);
      return;
    }
    this._setStatus(Status.OFFLINE);
    if (this._wantConnected) this._scheduleReconnect();
  }

  _dropSocket(code = 1000, reason = '') {
    const ws = this._ws;
    this._ws = null;
    this._stopPing();
    this._resyncing = false;
    if (!ws) return;
    try {
      ws.close(code, reason);
    } catch {
      // Closing a socket that is still connecting may throw; it is gone anyway.
    }
  }

  _scheduleReconnect() {
    if (this._reconnectTimer !== null || this._closed) return;
    const delay = backoffDelay(this._reconnectAttempts, this.reconnectDelay,
                               this.maxReconnectDelay, this.random);
    this._reconnectAttempts++;
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (this._wantConnected) this._open();
    }, delay);
  }

  _cancelReconnect() {
    if (this._reconnectTimer !== null) {
      clearTimeout(this._reconnectTimer);
      this._reconnectTimer = null;
    }
  }

  _startPing() {
    this._stopPing();
    const delay = Math.max(1, this.pingInterval + (Math.random() * 2 - 1) * this.pingJitter);
    this._pingTimer = setTimeout(() => {
      this._pingTimer = null;
      if (this._session && this._ws && this._ws.readyState === OPEN) {
        this._sendRaw({type: 'Ping', index: 0, ack: this._serverIndex, resendMissing: false});
        this._startPing();
      }
    }, delay);
  }

  _stopPing() {
    if (this._pingTimer !== null) {
      clearTimeout(this._pingTimer);
      this._pingTimer = null;
    }
  }

  // ---- sessions ----

  _endSession() {
    this._session = null;
    this._clientIndex = 0;
    this._serverIndex = 0;
    this._nonAcked = [];
    this._resyncing = false;
    const handlers = [...this._replyHandlers.values()];
    this._replyHandlers.clear();
    this._byIndex.clear();
    for (const scope of this._scopes) scope.scopeIndex = null;
    for (const handler of handlers) handler(null);
  }

  // The server ended our session (4096/4097): start a new one and re-fetch
  // every scope with its params, as the iOS client does (docs/protocol.md#expiry).
  //
  // After a jittered wait: a gateway that drains ends many sessions, and
  // their clients must not all come back in the same instant.
  _restartSession() {
    this._endSession();
    this._restartPending = true;
    this._wantConnected = true;
    this._setStatus(Status.OFFLINE);
    this._cancelReconnect();
    this._scheduleReconnect();
  }

  _onSessionCreateReply(message) {
    if (this._session) return;
    if (typeof message.sessionToken === 'string' && message.sessionToken !== '') {
      this._session = {token: message.sessionToken};
      this._clientIndex = 0;
      this._serverIndex = 0;
      this._nonAcked = [];
      this._reconnectAttempts = 0;
      const restarted = this._restartPending;
      this._restartPending = false;
      this._startPing();
      this._setStatus(Status.ONLINE);
      this.emit('session', {token: message.sessionToken, restarted});
      const waiters = this._sessionWaiters.splice(0, this._sessionWaiters.length);
      for (const w of waiters) w.resolve();
      if (restarted) {
        for (const scope of this._scopes) this._sendFetch(scope, false);
      }
      return;
    }
    const error = JetstreamError.fromWire(message.error, 'Session creation denied');
    this._wantConnected = false;
    this._restartPending = false;
    this.emit('sessionDenied', error);
    this.emit('error', error);
    this._rejectWaiters(this._onlineWaiters, error);
    this._rejectWaiters(this._sessionWaiters, error);
    for (const scope of this._scopes) scope._failStateWaiters(error);
    this._dropSocket(1000, 'Session denied');
    this._setStatus(Status.OFFLINE);
  }

  // ---- receiving ----

  _onFrame(data) {
    let text = data;
    if (typeof text !== 'string') {
      text = data instanceof ArrayBuffer ? new TextDecoder().decode(data) : String(data);
    }
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      this._log('warn', 'frame is not JSON; ignored');
      return;
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    const ws = this._ws;
    for (const message of messages) {
      if (this._ws !== ws) return;  // the socket was dropped (index gap)
      if (!message || typeof message !== 'object' || typeof message.type !== 'string') continue;
      try {
        this._onMessage(message);
      } catch (error) {
        // A malformed message must not take the client down.
        this._log('warn', 'message failed:', error);
        this.emit('error', error);
      }
    }
  }

  _onMessage(message) {
    this.emit('message', message);
    const index = message.index;
    if (!Number.isInteger(index) || index < 0) return;
    if (index === 0) {
      if (message.type === 'SessionCreateReply') this._onSessionCreateReply(message);
      else if (message.type === 'Ping') this._onPing(message);
      return;
    }
    if (!this._session) return;
    if (index <= this._serverIndex) return;  // already seen (a resend)
    if (index !== this._serverIndex + 1) {
      // A gap: something was lost. Reconnect; the resend recovers it
      // (docs/protocol.md#client-receive).
      this._log('warn', `index gap: expected ${this._serverIndex + 1}, got ${index}; reconnecting`);
      this._dropSocket(1000, 'Index gap');
      this._setStatus(Status.OFFLINE);
      this._open();
      return;
    }
    this._serverIndex = index;
    if (Number.isInteger(message.replyTo)) {
      const handler = this._replyHandlers.get(message.replyTo);
      if (handler) {
        this._replyHandlers.delete(message.replyTo);
        handler(message);
      }
      return;
    }
    const scope = this._byIndex.get(message.scopeIndex);
    if (message.type === 'ScopeState') {
      if (scope) scope._applyState(message.rootUUID, message.fragments);
    } else if (message.type === 'ScopeSync') {
      if (scope) scope._applySync(message.fragments);
    }
  }

  _onPing(message) {
    if (!this._session) return;
    if (Number.isInteger(message.ack)) {
      const ack = message.ack;
      this._nonAcked = this._nonAcked.filter((entry) => entry.index > ack);
    }
    if (message.resendMissing === true) {
      const ws = this._ws;
      if (ws && ws.readyState === OPEN) {
        for (const entry of this._nonAcked) ws.send(entry.text);
      }
      if (this._resyncing) {
        this._resyncing = false;
        this._reconnectAttempts = 0;
        this._setStatus(Status.ONLINE);
      }
    }
  }

  // ---- sending ----

  _sendRaw(message) {
    const ws = this._ws;
    if (ws && ws.readyState === OPEN) ws.send(JSON.stringify(message));
  }

  // Sends a sequenced message (index from 1); it is kept until acknowledged
  // and resent when the server asks. `onReply(reply)` gets the reply, or
  // null when the session ended before one came.
  _send(type, body, onReply) {
    const index = ++this._clientIndex;
    const text = JSON.stringify({type, index, ...body});
    this._nonAcked.push({index, text});
    if (onReply) this._replyHandlers.set(index, onReply);
    const ws = this._ws;
    if (ws && ws.readyState === OPEN && this._session && !this._resyncing) ws.send(text);
    return index;
  }

  _sendFetch(scope, isNew) {
    scope._fetchPending = true;
    this._send('ScopeFetch', {name: scope.name, params: scope.params}, (reply) => {
      scope._fetchPending = false;
      if (reply === null) return;  // session ended: the restart fetches again
      let error = null;
      if (reply.type !== 'ScopeFetchReply') {
        error = new JetstreamError(`Expected a ScopeFetchReply, got ${reply.type}`);
      } else if (reply.error) {
        error = JetstreamError.fromWire(reply.error, 'Fetch failed');
      } else if (!Number.isInteger(reply.scopeIndex) || reply.scopeIndex < 0) {
        error = new JetstreamError('ScopeFetchReply without scopeIndex');
      }
      if (error) {
        error.scope = scope.name;
        if (isNew && !scope.ready) this._forgetScope(scope);
        scope._failStateWaiters(error);
        if (scope.ready) scope.emit('error', error);
        this.emit('error', error);
        return;
      }
      for (const [i, s] of this._byIndex) if (s === scope && i !== reply.scopeIndex) this._byIndex.delete(i);
      scope.scopeIndex = reply.scopeIndex;
      this._byIndex.set(reply.scopeIndex, scope);
    });
  }

  _forgetScope(scope) {
    const i = this._scopes.indexOf(scope);
    if (i >= 0) this._scopes.splice(i, 1);
  }

  _sendChangeSet(scope, changeSet) {
    if (!this._session || scope.scopeIndex === null) {
      // Between sessions: the coming ScopeState replaces local state.
      scope._onLost(changeSet);
      return;
    }
    const body = {scopeIndex: scope.scopeIndex, fragments: changeSet.fragments};
    if (changeSet.atomic) body.atomic = true;
    changeSet.index = this._send('ScopeSync', body, (reply) => {
      if (reply === null) scope._onLost(changeSet);
      else scope._onReply(changeSet, reply);
    });
  }
}
