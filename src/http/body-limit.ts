/**
 * The largest request body the API takes, in bytes (413 `payload_too_large` above it). One number
 * for the app (createApp), the Node entry's pre-read and `Expect: 100-continue`, and the stack's
 * HAProxy, which forwards a declared length above it at once, without waiting for the body
 * (stack/haproxy-config.ts).
 */
export const BODY_LIMIT_BYTES = 16 * 1024;

/** the 413's detail (createApp) */
export const BODY_LIMIT_DETAIL = `request body exceeds ${BODY_LIMIT_BYTES} bytes`;
