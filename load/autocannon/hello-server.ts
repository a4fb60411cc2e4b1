/**
 * The baseline: a bare uWebSockets.js server answering 202 with a small JSON
 * body, the ceiling this machine puts on any uWS endpoint.
 */
import uWS from 'uWebSockets.js';

const port = Number(process.argv[2] ?? 8091);
const body = '{"purchaseId":"pur_000000000000_000000000000000000000000","status":"pending"}';
uWS
  .App()
  .any('/*', (res) => {
    res.writeStatus('202 Accepted').writeHeader('content-type', 'application/json').end(body);
  })
  .listen('127.0.0.1', port, (s) => {
    if (!s) {
      process.stderr.write(`hello-server: cannot listen on ${port}\n`);
      process.exit(1);
    }
    process.stdout.write(`listening ${port}\n`);
  });
