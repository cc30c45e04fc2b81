// Starts the real sync service and gateway binaries for a test file.
//
// Binaries come from $JETSTREAM_BIN_DIR (default: <repo>/bazel-bin); build
// them with `bazel build //gateway //syncservice`. Each prints
// "LISTENING host:port" on stdout once it serves.

import {spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import path from 'node:path';

import {REPO_ROOT, DEMO_SCHEMA_PATH, DEMO_SCOPES_PATH} from './fixtures.js';

export function binDir() {
  return process.env.JETSTREAM_BIN_DIR || path.join(REPO_ROOT, 'bazel-bin');
}

function binary(name) {
  const file = path.join(binDir(), name, name);
  if (!existsSync(file)) {
    throw new Error(`${file} not found: run 'bazel build //gateway //syncservice' or set JETSTREAM_BIN_DIR`);
  }
  return file;
}

// Spawns `file args` and resolves {child, address, output()} once it prints
// its LISTENING line.
function startProcess(file, args, {timeoutMs = 30000} = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    const output = () => `--- stdout ---\n${stdout.slice(-4000)}\n--- stderr ---\n${stderr.slice(-8000)}`;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(file)} did not print LISTENING in ${timeoutMs} ms\n${output()}`));
    }, timeoutMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-65536);
    });
    child.stdout.setEncoding('utf8');
    let listening = false;
    child.stdout.on('data', (d) => {
      stdout = (stdout + d).slice(-65536);
      if (listening) return;
      const m = /^LISTENING (\S+)\s*$/m.exec(stdout);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve({child, address: m[1], output});
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      if (!listening) {
        clearTimeout(timer);
        reject(new Error(`${path.basename(file)} exited (${code ?? signal}) before LISTENING\n${output()}`));
      }
    });
  });
}

function stopProcess(child, timeoutMs = 5000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

// Starts the sync service (demo schema and scopes) and a gateway in front of
// it. Returns {wsUrl, httpUrl, stop(), logs()}.
export async function startServers({gatewayArgs = [], syncArgs = []} = {}) {
  const sync = await startProcess(binary('syncservice'), [
    '--listen=127.0.0.1:0',
    `--schema=${DEMO_SCHEMA_PATH}`,
    `--scopes=${DEMO_SCOPES_PATH}`,
    // In memory: every test starts from the demo configuration.
    '--store=memory',
    ...syncArgs,
  ]);
  let gateway;
  try {
    gateway = await startProcess(binary('gateway'), [
      '--port=0',
      `--sync_service=${sync.address}`,
      ...gatewayArgs,
    ]);
  } catch (e) {
    await stopProcess(sync.child);
    throw e;
  }
  return {
    wsUrl: `ws://${gateway.address}`,
    httpUrl: `http://${gateway.address}`,
    syncAddress: sync.address,
    logs: () => `=== gateway ===\n${gateway.output()}\n=== syncservice ===\n${sync.output()}`,
    async stop() {
      await stopProcess(gateway.child);
      await stopProcess(sync.child);
    },
  };
}

// Resolves when `predicate()` is true (polled), rejects after `timeoutMs`.
export async function waitFor(predicate, {timeoutMs = 5000, intervalMs = 10, what = 'condition'} = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await predicate();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Resolves with the first event `name` of `emitter` that passes `filter`.
export function nextEvent(emitter, name, {filter = () => true, timeoutMs = 5000} = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for '${name}'`));
    }, timeoutMs);
    const off = emitter.on(name, (payload) => {
      if (!filter(payload)) return;
      clearTimeout(timer);
      off();
      resolve(payload);
    });
  });
}
