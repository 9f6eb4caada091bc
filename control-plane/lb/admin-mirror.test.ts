import { describe, expect, it } from 'vitest';
import { adminStateOf, type MirroredState, mirrorSteps } from './admin-mirror.js';
import { ADMIN, type ServerState } from './haproxy-runtime.js';

const server = (name: string, admin = 0): ServerState => ({
  name,
  weight: 10,
  initialWeight: 10,
  admin,
  draining: (admin & ADMIN.FDRAIN) !== 0,
  maintenance: (admin & ADMIN.FMAINT) !== 0,
  running: true,
});
const none = new Map<string, MirroredState>();

describe('adminStateOf', () => {
  it('is maint over drain, and nothing for a server in neither (or only inherited or configured states)', () => {
    expect(adminStateOf({ admin: ADMIN.FMAINT | ADMIN.FDRAIN })).toBe('maint');
    expect(adminStateOf({ admin: ADMIN.FDRAIN })).toBe('drain');
    expect(adminStateOf({ admin: 0 })).toBeUndefined();
    expect(adminStateOf({ admin: ADMIN.CMAINT | ADMIN.IDRAIN })).toBeUndefined();
  });
});

describe('mirrorSteps (lb sync --watch: maint/drain by hand held in the fallback)', () => {
  it('copies a maint or drain of the main backend to the fallback, and remembers it', () => {
    const { steps, mirrored } = mirrorSteps(
      [server('api-1', ADMIN.FMAINT), server('api-2', ADMIN.FDRAIN), server('api-3')],
      [server('api-1'), server('api-2'), server('api-3')],
      none,
    );
    expect(steps).toEqual([
      { server: 'api-1', state: 'maint' },
      { server: 'api-2', state: 'drain' },
    ]);
    expect([...mirrored]).toEqual([
      ['api-1', 'maint'],
      ['api-2', 'drain'],
    ]);
  });

  it('sends nothing while the fallback already matches, and keeps what it mirrored', () => {
    const { steps, mirrored } = mirrorSteps(
      [server('api-1', ADMIN.FMAINT)],
      [server('api-1', ADMIN.FMAINT)],
      new Map([['api-1', 'maint']]),
    );
    expect(steps).toEqual([]);
    expect([...mirrored]).toEqual([['api-1', 'maint']]);
  });

  it('sets the fallback ready when the main server leaves a state the mirror set', () => {
    const { steps, mirrored } = mirrorSteps(
      [server('api-1')],
      [server('api-1', ADMIN.FMAINT)],
      new Map([['api-1', 'maint']]),
    );
    expect(steps).toEqual([{ server: 'api-1', state: 'ready' }]);
    expect(mirrored.size).toBe(0);
  });

  it("never ends a fallback drain or maint it did not set (an agent's drain on shutdown, the predecessor daemon's)", () => {
    const { steps, mirrored } = mirrorSteps([server('api-1')], [server('api-1', ADMIN.FDRAIN)], none);
    expect(steps).toEqual([]);
    expect(mirrored.size).toBe(0);
    // a state the fallback left by itself (the instance's agent said `ready`) is forgotten
    const after = mirrorSteps([server('api-1')], [server('api-1')], new Map([['api-1', 'drain']]));
    expect(after.steps).toEqual([]);
    expect(after.mirrored.size).toBe(0);
  });

  it("follows maint to drain and back, but does not turn another's fallback maint into a drain", () => {
    expect(
      mirrorSteps(
        [server('api-1', ADMIN.FDRAIN)],
        [server('api-1', ADMIN.FMAINT)],
        new Map([['api-1', 'maint']]),
      ).steps,
    ).toEqual([{ server: 'api-1', state: 'drain' }]);
    expect(mirrorSteps([server('api-1', ADMIN.FDRAIN)], [server('api-1', ADMIN.FMAINT)], none).steps).toEqual(
      [],
    );
    expect(
      mirrorSteps(
        [server('api-1', ADMIN.FMAINT)],
        [server('api-1', ADMIN.FDRAIN)],
        new Map([['api-1', 'drain']]),
      ).steps,
    ).toEqual([{ server: 'api-1', state: 'maint' }]);
  });

  it('leaves alone a server that only one backend has', () => {
    const { steps } = mirrorSteps([server('api-9', ADMIN.FMAINT)], [server('api-1')], none);
    expect(steps).toEqual([]);
  });
});
