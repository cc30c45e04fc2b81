// A tiny event emitter that works the same in browsers and Node.

function report(error) {
  if (typeof globalThis.reportError === 'function') {
    globalThis.reportError(error);
  } else {
    console.error(error);
  }
}

export class Emitter {
  constructor() {
    Object.defineProperty(this, '_listeners', {value: new Map(), writable: true});
  }

  // Adds a listener; returns a function that removes it again.
  on(event, listener) {
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    let list = this._listeners.get(event);
    if (!list) this._listeners.set(event, (list = []));
    list.push(listener);
    return () => this.off(event, listener);
  }

  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  off(event, listener) {
    const list = this._listeners.get(event);
    if (!list) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this._listeners.delete(event);
  }

  // Calls every listener; a throwing listener is reported and does not stop
  // the others (nor the client's own processing).
  emit(event, ...args) {
    const list = this._listeners.get(event);
    if (!list) return false;
    for (const listener of [...list]) {
      try {
        listener(...args);
      } catch (error) {
        report(error);
      }
    }
    return true;
  }

  listenerCount(event) {
    const list = this._listeners.get(event);
    return list ? list.length : 0;
  }
}
