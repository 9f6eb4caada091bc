/**
 * `NoContentResponse`: Node's ServerResponse, except that a 204 or 304 goes out without
 * `Content-Type`. @hono/node-server adds `content-type: text/plain; charset=UTF-8` to every
 * response that has none (its `buildOutgoingHttpHeaders`), also to those that by definition carry
 * no content (RFC 9110 §15.3.5, §15.4.5); it has no setting for it. Given to `createServer` as its
 * `ServerResponse` class, so it costs nothing per request beyond one status check in `writeHead`.
 * Only the `writeHead(status, headersObject)` form @hono/node-server uses is rewritten; any other
 * form passes through untouched.
 */
import { type IncomingMessage, type OutgoingHttpHeaders, ServerResponse } from 'node:http';

export class NoContentResponse<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {
  override writeHead(statusCode: number, ...rest: unknown[]): this {
    if ((statusCode === 204 || statusCode === 304) && rest.length === 1) {
      const headers = rest[0];
      if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
        const copy: OutgoingHttpHeaders = { ...(headers as OutgoingHttpHeaders) };
        for (const name of Object.keys(copy)) if (name.toLowerCase() === 'content-type') delete copy[name];
        return super.writeHead(statusCode, copy);
      }
    }
    return (super.writeHead as (...args: unknown[]) => this)(statusCode, ...rest);
  }
}
