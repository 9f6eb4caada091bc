/**
 * `/metrics` renderings shared by the calls that arrive together, so a flood of scrapes costs
 * fewer renderings. A rendering costs ~5–8 ms of CPU on the stack's instances (70–80 KB of text;
 * the API's collectors are synchronous, the email worker's queue gauge asks RabbitMQ); an outside
 * check sent 1,500 anonymous `GET /metrics`, 250 at a time, through :8080 and took api-1 out of
 * HAProxy (health checks past their timeout), as `/openapi.json` did when it was built at every
 * request. A review of this batching counted 190–230 renderings for the same 1,500 (batches of 5–9)
 * on a box at load 4, and still saw one instance out for 0.7 s in one flood of five: it lowers the
 * cost, it does not bound it — any anonymous route can be flooded (docs/http-api.md, Exposure).
 *
 * Contract of `renderBatch(render)`:
 * - a call joins the rendering scheduled next, or schedules one: every call received before that
 *   rendering begins — all the requests read off the sockets in one turn of the event loop, at
 *   least — shares it; it begins in a later check phase (`setImmediate`), after the last of them
 *   arrived, so no caller gets values older than its own call (a rendering made once a second for
 *   everyone was tried first, and broke a check reading a counter before and after an action);
 * - one rendering runs at a time: while one runs (an asynchronous collector), the next waits for
 *   its end, and calls arriving meanwhile join that next one;
 * - a rendering that fails, or `render` throwing before it returns a promise, fails the calls
 *   that shared it (never the process); the next call renders again.
 */
export function renderBatch<T>(render: () => Promise<T>): () => Promise<T> {
  let scheduled: Promise<T> | undefined;
  let running: Promise<unknown> | undefined;
  const begin = (resolve: (v: T) => void, reject: (e: unknown) => void) => {
    setImmediate(() => {
      scheduled = undefined;
      // a throw inside render() rejects this promise instead of escaping setImmediate
      const rendering = Promise.resolve().then(render);
      running = rendering;
      const done = () => {
        if (running === rendering) running = undefined;
      };
      rendering.then(done, done);
      rendering.then(resolve, reject);
    });
  };
  return () => {
    scheduled ??= new Promise<T>((resolve, reject) => {
      const start = () => begin(resolve, reject);
      if (running) running.then(start, start);
      else start();
    });
    return scheduled;
  };
}
