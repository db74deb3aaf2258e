// Baseline for the `submit` figure: a bare node:http server that reads a JSON
// body, parses it and answers 202 with a JSON job-like object. Prints
// "listening PORT" once ready. Usage: node http-json.mjs PORT
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

const port = Number(process.argv[2] ?? 0);
const server = createServer((req, res) => {
  const parts = [];
  req.on('data', (b) => parts.push(b));
  req.on('end', () => {
    let input;
    try {
      input = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      res.writeHead(422, { 'content-type': 'application/json' }).end('{"detail":"bad json"}');
      return;
    }
    const now = new Date().toISOString();
    const body = JSON.stringify({
      id: randomUUID(), name: input.name ?? null, command: input.command ?? null, working_dir: '/tmp', env: {}, payload: null,
      status: 'pending', exit_code: null, error: null, owner_id: randomUUID(), batch_id: null, timeout_seconds: null,
      created_at: now, started_at: null, finished_at: null,
    });
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
