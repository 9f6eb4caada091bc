/**
 * isConnectFailure: which failed calls may go on to another endpoint. Only one that never
 * started (gRPC's picker found no connection); one that may have reached etcd must not, or a
 * write could be applied twice. The messages are those etcd3 1.1.2 / grpc-js 1.14 give.
 */
import { GRPCDeadlineExceededError, GRPCInternalError, GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { isConnectFailure } from './etcd-client.js';

describe('isConnectFailure', () => {
  it('a call the picker failed for want of a connection (nothing sent)', () => {
    expect(
      isConnectFailure(
        new GRPCUnavailableError(
          '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2399. Resolution note: ',
        ),
      ),
    ).toBe(true);
    expect(isConnectFailure(new GRPCUnavailableError('14 UNAVAILABLE: No connection established'))).toBe(
      true,
    );
  });

  it('not a call that may have reached etcd, nor another error', () => {
    for (const error of [
      new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'),
      new GRPCUnavailableError('14 UNAVAILABLE: read ECONNRESET'),
      new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 3.001s'),
      // the wording alone, without gRPC's UNAVAILABLE, is not one
      new GRPCInternalError('13 INTERNAL: No connection established'),
      new Error('No connection established'),
      'No connection established',
      undefined,
    ]) {
      expect(isConnectFailure(error), String(error)).toBe(false);
    }
  });
});
