// A Jetstream downstream ChangesetValidator hook in Node.js with
// @grpc/grpc-js and @grpc/proto-loader. It loads the hook contract
// (proto/hooks/v1/hooks.proto) straight from this repository, serves
// ValidateChangeset with the demo's rules (rules.js), and prints
// "LISTENING <host>:<port>" once serving.
//
//   npm ci && node validator.js --listen=127.0.0.1:50061
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { applyDemoRules } = require('./rules');

// The repository root: hooks.proto imports "proto/sync/v1/model.proto".
const ROOT = path.resolve(__dirname, '..', '..');

function loadHooks() {
  const definition = protoLoader.loadSync(path.join(ROOT, 'proto/hooks/v1/hooks.proto'), {
    includeDirs: [ROOT],
    keepCase: true, // field names as in the .proto (cls_name, ...)
    enums: String, // verdicts as 'ACCEPT' / 'REJECT'
    oneofs: true, // Value.kind tells which member is set
    defaults: true,
  });
  return grpc.loadPackageDefinition(definition).jetstream.hooks.v1;
}

// Starts the hook on `address` ("host:port", port 0 picks one); resolves to
// {server, port}.
function start(address) {
  const hooks = loadHooks();
  const server = new grpc.Server();
  server.addService(hooks.ChangesetValidator.service, {
    ValidateChangeset(call, callback) {
      const response = applyDemoRules(call.request);
      console.error(
        `validated ${call.request.fragments.length} fragments of scope ${call.request.scope}` +
          ` from '${call.request.principal ? call.request.principal.identity : ''}':` +
          ` ${response.rejections.length} rejected, ${response.modifications.length} modified`);
      callback(null, response);
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ server, port });
    });
  });
}

module.exports = { start, loadHooks };

if (require.main === module) {
  const arg = process.argv.find((a) => a.startsWith('--listen='));
  const address = arg ? arg.slice('--listen='.length) : '127.0.0.1:50061';
  start(address).then(({ server, port }) => {
    console.log(`LISTENING ${address.slice(0, address.lastIndexOf(':'))}:${port}`);
    const stop = () => server.tryShutdown(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  }, (err) => {
    console.error(`validator: cannot listen on ${address}: ${err.message}`);
    process.exit(1);
  });
}
