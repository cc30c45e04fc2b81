// Shared test fixtures: the demo schema and an offline scope whose "client"
// records the changesets instead of sending them.

import {readFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {Schema, Scope, randomUUID} from '../../src/index.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const DEMO_SCHEMA_PATH = path.join(REPO_ROOT, 'syncservice/config/demo_schema.json');
export const DEMO_SCOPES_PATH = path.join(REPO_ROOT, 'syncservice/config/demo_scopes.json');

export function demoSchemaJson() {
  return JSON.parse(readFileSync(DEMO_SCHEMA_PATH, 'utf8'));
}

export function demoSchema() {
  return new Schema(demoSchemaJson());
}

// A Scope wired to a recording client. `sent` collects changesets; each can
// be answered with reply(changeSet, fragmentReplies).
export function offlineScope({schema = demoSchema(), changeInterval = -1} = {}) {
  const sent = [];
  const client = {
    _sendChangeSet(scope, changeSet) {
      sent.push(changeSet);
    },
  };
  const scope = new Scope(client, 'Test', {}, {schema, changeInterval});
  scope.scopeIndex = 0;
  const reply = (changeSet, fragmentReplies) =>
    scope._onReply(changeSet, {type: 'ScopeSyncReply', index: 1, replyTo: 1, fragmentReplies});
  return {scope, sent, reply};
}

// A Canvas state with `n` shapes: {rootUUID, fragments, shapeUUIDs}.
export function canvasState(n = 2) {
  const rootUUID = randomUUID();
  const shapeUUIDs = Array.from({length: n}, () => randomUUID());
  const fragments = [
    {type: 'change', uuid: rootUUID, clsName: 'Canvas', properties: {name: 'Shapes Demo', shapes: shapeUUIDs}},
    ...shapeUUIDs.map((uuid, i) => ({
      type: 'add',
      uuid,
      clsName: 'Shape',
      properties: {x: 10 * (i + 1), y: 10, width: 100, height: 100, color: null},
    })),
  ];
  return {rootUUID, fragments, shapeUUIDs};
}
