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
 *   BOM dropped, as the Fetch API's `text()` does; bytes that are not UTF-8 are `{ notUtf8: true }`); an empty body is
 *   `{ text: '' }`. The bytes are also left as `incoming.rawBody`, from which @hono/node-server
 *   builds the Fetch body should anything still ask for `c.req.raw.body` (@hono/zod-openapi
 *   does, to tell an empty body from a body without a Content-Type); without it that Request
 *   would be built over a stream already read, and fail.
 * - As soon as the declared Content-Length or the bytes received exceed `limit`, the request is
 *   handed on at once as `{ tooLarge: true }` (createApp answers 413). The rest of that body is
 *   read and discarded, up to LINGER_MAX_BYTES in all or for LINGER_MAX_MS, and the connection
 *   stays usable; past either bound it is closed, so a client cannot hold it by sending more.
 *   Closing at once while the body still came in made the kernel reset the connection, and the
 *   reset could destroy the answer before it was read: an outside check sent 100 KB–2 MB bodies
 *   through HAProxy and 1–2 in 12 got no answer at all (directly, 34 of 34 did).
 * - A request with `Expect: 100-continue` whose declared length is over `limit` gets no
 *   `100 Continue` (installExpectContinue): its client sends no body, so the answer comes at once
 *   and the connection is closed after it (the client may or may not send the body then).
 * - A request that breaks off while its body is read (the client went away) is never handed on:
 *   there is no one to answer, and its socket is already closing.
 * The server must be served with @hono/node-server's `autoCleanupIncoming: false`: it would
 * otherwise wait for an `end` event of a body that ended before it saw the request.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { PreReadBody } from '../app-env.js';
import { utf8Text } from '../http/utf8-text.js';

const BODY = Symbol('shardgate.preReadBody');
/** set on a request whose client waits for a `100 Continue` it will not get */
const NO_CONTINUE = Symbol('shardgate.noContinue');
/** how much of a refused body is read (and dropped) after the answer, and for how long */
export const LINGER_MAX_BYTES = 8 * 1024 * 1024;
export const LINGER_MAX_MS = 5000;
type WithBody = IncomingMessage & { [BODY]?: PreReadBody; [NO_CONTINUE]?: true; rawBody?: Buffer };

const declaredLength = (req: IncomingMessage) => Number(req.headers['content-length']);

/**
 * Node's 'checkContinue' (a request with `Expect: 100-continue`): `100 Continue` unless the
 * declared length is over `limit`, then the request as Node would have emitted it. Without a
 * listener Node sends `100 Continue` for every such request, a body of 2 MB included.
 */
export function installExpectContinue(server: Pick<EventEmitter, 'on' | 'emit'>, limit: number): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (declaredLength(req) > limit) (req as WithBody)[NO_CONTINUE] = true;
    else res.writeContinue();
    server.emit('request', req, res);
  });
}

/**
 * The rest of a refused body: dropped as it comes, the connection kept, unless the client waits
 * for a `100 Continue` (no body is coming: close after the answer) or sends more than
 * LINGER_MAX_BYTES or for longer than LINGER_MAX_MS (then the connection is destroyed, whatever
 * length it declared: by then the answer has long been sent). `received`: the bytes of it already
 * read. Also used by the raw-request guard for the requests it refuses.
 */
export function lingerOrClose(
  req: IncomingMessage,
  res: ServerResponse,
  received: number,
  linger: Linger = { maxBytes: LINGER_MAX_BYTES, maxMs: LINGER_MAX_MS },
): void {
  // a length declared over the bound is read up to it too: closed at once, the reset lost the
  // answer to clients still sending (7–10 of 12 bodies of 9 MB sent directly, an outside check)
  if ((req as WithBody)[NO_CONTINUE]) {
    res.shouldKeepAlive = false;
    req.resume();
    return;
  }
  let drained = received;
  const done = () => {
    clearTimeout(timer);
    req.off('data', onData);
  };
  const giveUp = () => {
    done();
    req.socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > linger.maxBytes) giveUp();
  };
  const timer = setTimeout(giveUp, linger.maxMs);
  timer.unref();
  req.on('data', onData);
  req.once('end', done);
  req.once('close', done);
}

/** what `preReadBodies` read of this request; undefined for GET, HEAD, or a request it did not see */
export function preReadBodyOf(incoming: IncomingMessage | undefined): PreReadBody | undefined {
  return (incoming as WithBody | undefined)?.[BODY];
}

/** how much of a refused body is read after the answer, and for how long (tests shorten them) */
export interface Linger {
  maxBytes: number;
  maxMs: number;
}

export function preReadBodies(
  listener: RequestListener,
  limit: number,
  linger: Linger = { maxBytes: LINGER_MAX_BYTES, maxMs: LINGER_MAX_MS },
): RequestListener {
  return (req, res) => {
    if (req.method === 'GET' || req.method === 'HEAD') {
      listener(req, res);
      return;
    }
    const tooLarge = (received: number) => {
      (req as WithBody)[BODY] = { tooLarge: true };
      lingerOrClose(req, res, received, linger);
      listener(req, res);
    };
    if (declaredLength(req) > limit) {
      tooLarge(0);
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
        tooLarge(size);
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const text = utf8Text(bytes);
      (req as WithBody)[BODY] = text === undefined ? { notUtf8: true } : { text };
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
