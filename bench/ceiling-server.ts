/**
 * The ceiling of the benchmark: a bare `node:http` server answering every request with the same
 * fixed JSON body as `GET /health`, with the API's keep-alive settings. Run as its own process
 * (`node bench/ceiling-server.ts <port> [host]`, port 0 = any free one); it prints `{"port":N}` on
 * stdout once it listens, and exits on SIGTERM/SIGINT.
 */
import { createServer } from 'node:http';

const body = Buffer.from('{"status":"ok"}');
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.argv[2] ?? 0), process.argv[3] ?? '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' ? address?.port : 0 })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
