/**
 * `/metrics` renderings shared by the calls that arrive together, so a flood of scrapes cannot
 * take the event loop. A rendering costs ~5 ms of CPU on the stack's instances (44 KB of text)
 * and runs without yielding (prom-client's collectors are synchronous); an outside check sent
 * 1,500 anonymous `GET /metrics`, 250 at a time, through :8080 and took api-1 out of HAProxy
 * (health checks past their timeout), as `/openapi.json` did when it was built at every request.
 *
 * Contract of `renderBatch(render)`:
 * - a call joins the rendering scheduled for the loop's next check phase (`setImmediate`), or
 *   schedules one: every call received in the same turn of the event loop — all the requests
 *   read off the sockets in one poll — gets one rendering, begun after the last of them arrived;
 * - so no caller ever gets values older than its own call: a check reading a counter before and
 *   after an action sees the action (a rendering made once a second for everyone was tried
 *   first, and broke exactly that);
 * - a call that arrives while a rendering runs (one that yields) waits for the next one;
 * - a rendering that fails fails the calls that shared it; the next call renders again.
 * Under a flood the batches grow with the time each rendering takes, so renderings per second
 * stay about as many as the loop has turns to spare.
 */
export function renderBatch<T>(render: () => Promise<T>): () => Promise<T> {
  let scheduled: Promise<T> | undefined;
  return () => {
    scheduled ??= new Promise<T>((resolve, reject) => {
      setImmediate(() => {
        scheduled = undefined;
        render().then(resolve, reject);
      });
    });
    return scheduled;
  };
}
