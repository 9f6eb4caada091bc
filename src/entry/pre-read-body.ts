/**
 * Request bodies read straight off the Node request before Hono sees it, so a POST never builds
 * a Fetch `Request` around the Node request. @hono/node-server builds one (undici's Request, an
 * AbortController and a web stream over the socket) on the first access to a body; on a borrow
 * or a return that was about a tenth of an instance's CPU (bench/ROUNDS.md). createApp takes the
 * text from `Services.preReadBody` and runs its body limit on it; other runtimes leave that
 * service out and read the body through the Fetch API as before.
 *
 * Contract of `preReadBodies(listener, limit)`:
 * - GET and HEAD pass through untouched (no body in the Fetch API).
 * - Any other method: the body is read to its end and handed on as `{ text }` (UTF-8, a leading
 *   BOM dropped and invalid bytes replaced, as the Fetch API's `text()` does); an empty body is
 *   `{ text: '' }`. The bytes are also left as `incoming.rawBody`, from which @hono/node-server
 *   builds the Fetch body should anything still ask for `c.req.raw.body` (@hono/zod-openapi
 *   does, to tell an empty body from a body without a Content-Type); without it that Request
 *   would be built over a stream already read, and fail.
 * - As soon as the declared Content-Length or the bytes received exceed `limit`, the request is
 *   handed on at once as `{ tooLarge: true }` (createApp answers 413); the rest of that body is
 *   discarded and the connection is closed after the answer, so a client cannot hold it open by
 *   sending more.
 * - A request that breaks off while its body is read (the client went away) is never handed on:
 *   there is no one to answer, and its socket is already closing.
 * The server must be served with @hono/node-server's `autoCleanupIncoming: false`: it would
 * otherwise wait for an `end` event of a body that ended before it saw the request.
 */
import type { IncomingMessage, RequestListener } from 'node:http';
import type { PreReadBody } from '../app-env.js';

const BODY = Symbol('shardgate.preReadBody');
/** not streaming, so one decoder serves every request; fatal: bytes that are not UTF-8 throw */
const utf8 = new TextDecoder('utf-8', { fatal: true });
type WithBody = IncomingMessage & { [BODY]?: PreReadBody; rawBody?: Buffer };

/** what `preReadBodies` read of this request; undefined for GET, HEAD, or a request it did not see */
export function preReadBodyOf(incoming: IncomingMessage | undefined): PreReadBody | undefined {
  return (incoming as WithBody | undefined)?.[BODY];
}

export function preReadBodies(listener: RequestListener, limit: number): RequestListener {
  return (req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      listener(req, res);
      return;
    }
    const tooLarge = () => {
      (req as WithBody)[BODY] = { tooLarge: true };
      res.shouldKeepAlive = false;
      // flowing without a 'data' listener: whatever else arrives is dropped
      req.resume();
      listener(req, res);
    };
    if (Number(req.headers['content-length']) > limit) {
      tooLarge();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop();
        tooLarge();
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      let body: PreReadBody;
      try {
        body = { text: utf8.decode(bytes) };
      } catch {
        body = { notUtf8: true };
      }
      (req as WithBody)[BODY] = body;
      (req as WithBody).rawBody = bytes;
      listener(req, res);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.once('error', () => {
      stop();
      res.destroy();
    });
  };
}
