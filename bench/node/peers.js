// The Node.js peers of `held` (issue 19): the same two idle connections the bare axum baseline
// holds, written the way a Node.js learner would. `GET /sse` is an express 4 event stream
// (headers, then `res.write` of a keep-alive comment every 15 s); `/ws` is a WebSocket of the
// `websocket` package that reads until closed. `held` installs both packages from the npm
// registry into a temporary folder and passes it as `--modules DIR`; nothing here is committed
// from them. Prints "node peers are serving on http://ADDR" once it listens.
'use strict';
const path = require('path');
const http = require('http');

const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const modules = arg('--modules', 'node_modules');
const [host, port] = arg('--addr', '127.0.0.1:0').split(':');
const express = require(path.resolve(modules, 'express'));
const WebSocketServer = require(path.resolve(modules, 'websocket')).server;

const app = express();
app.get('/sse', (req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  });
  res.write(':\n\n');
  const keepAlive = setInterval(() => res.write(':\n\n'), 15000);
  req.on('close', () => clearInterval(keepAlive));
});

const server = http.createServer(app);
const sockets = new WebSocketServer({ httpServer: server, autoAcceptConnections: false });
sockets.on('request', (request) => {
  if (request.resourceURL.pathname !== '/ws') return request.reject(404);
  request.accept(null, request.origin).on('message', () => {});
});
server.listen(Number(port), host, () => {
  const { address, port: bound } = server.address();
  console.log(`node peers are serving on http://${address}:${bound}`);
});
