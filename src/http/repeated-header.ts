/**
 * The message for a request header that carries one value (the tenant id, a Bearer token, a
 * consistency token; none of them holds a comma) but came as `a, b`: sent more than once, which
 * the runtime joins with ", " as the Fetch API does (entry/incoming-header.ts), or as a list.
 */
export const REPEATED_HEADER = 'one value only: the header was sent more than once, or holds a list';
