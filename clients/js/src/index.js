// jetstream-client: a Jetstream model sync client for browsers and Node.
//
//   import {Client} from 'jetstream-client';
//   const client = new Client({url: 'ws://127.0.0.1:3000', schema});
//   const canvas = await client.fetch('Canvas');
//   canvas.root.push('shapes', canvas.create('Shape', {x: 10, y: 10}));

export {Client, Status, CLOSE_DENIED_CONNECTION, CLOSE_CLOSED_CONNECTION, backoffDelay} from './client.js';
export {Scope} from './scope.js';
export {Schema, ModelType, PropertyType, Property, Enumeration} from './schema.js';
export {ModelObject} from './model.js';
export {ChangeSet, ChangeSetStatus} from './changeset.js';
export {JetstreamError} from './errors.js';
export {Emitter} from './emitter.js';
export {randomUUID, normalizeUUID} from './uuid.js';
