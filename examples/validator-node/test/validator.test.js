// Starts the validator on 127.0.0.1:0 and calls it over gRPC as the sync
// service would.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const grpc = require('@grpc/grpc-js');
const { start, loadHooks } = require('../validator');

function number(v) { return { number_value: v }; }
function string(v) { return { string_value: v }; }

test('validates over gRPC: rejections and modifications', async () => {
  const { server, port } = await start('127.0.0.1:0');
  const hooks = loadHooks();
  const client = new hooks.ChangesetValidator(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const request = {
      scope: 'Canvas',
      principal: { identity: 'alice' },
      fragments: [
        { type: 'ADD', uuid: 'a', cls_name: 'Shape', properties: [{ name: 'x', value: number(5) }] },
        { type: 'CHANGE', uuid: 'b', cls_name: 'Shape', properties: [{ name: 'x', value: number(9950) }] },
        { type: 'ADD', uuid: 'c', cls_name: 'Message', properties: [{ name: 'text', value: string('x'.repeat(600)) }] },
        { type: 'ADD', uuid: 'd', cls_name: 'Message', properties: [{ name: 'text', value: string('  ') }] },
      ],
      // b is 100 wide: at x = 9950 it leaves the canvas.
      current: [{ uuid: 'b', cls_name: 'Shape', properties: [{ name: 'width', value: number(100) }] }],
    };
    const response = await new Promise((resolve, reject) => {
      client.ValidateChangeset(request, { deadline: Date.now() + 5000 }, (err, r) => (err ? reject(err) : resolve(r)));
    });
    assert.strictEqual(response.verdict, 'ACCEPT');
    assert.deepStrictEqual(response.rejections.map((r) => [r.fragment, r.message]), [
      [1, 'Shape must stay inside the 0..10000 canvas'],
      [3, 'Message text must not be empty'],
    ]);
    assert.strictEqual(response.modifications.length, 1);
    assert.strictEqual(response.modifications[0].fragment, 2);
    assert.strictEqual(response.modifications[0].properties[0].value.string_value, 'x'.repeat(500));
  } finally {
    client.close();
    server.forceShutdown();
  }
});
