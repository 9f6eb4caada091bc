import { describe, expect, it } from 'vitest';
import { adminStateOf, mirrorSteps } from './admin-mirror.js';
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

describe('adminStateOf', () => {
  it('is maint over drain, and nothing for a server in neither (or only inherited or configured states)', () => {
    expect(adminStateOf({ admin: ADMIN.FMAINT | ADMIN.FDRAIN })).toBe('maint');
    expect(adminStateOf({ admin: ADMIN.FDRAIN })).toBe('drain');
    expect(adminStateOf({ admin: 0 })).toBeUndefined();
    expect(adminStateOf({ admin: ADMIN.CMAINT | ADMIN.IDRAIN })).toBeUndefined();
  });
});

describe('mirrorSteps (lb sync --watch: maint/drain by hand held in the fallback)', () => {
  it('copies a maint or drain of the main backend to the fallback', () => {
    expect(
      mirrorSteps(
        [server('api-1', ADMIN.FMAINT), server('api-2', ADMIN.FDRAIN), server('api-3')],
        [server('api-1'), server('api-2'), server('api-3')],
      ),
    ).toEqual([
      { server: 'api-1', state: 'maint' },
      { server: 'api-2', state: 'drain' },
    ]);
  });

  it('sends nothing while the fallback matches', () => {
    expect(
      mirrorSteps(
        [server('api-1', ADMIN.FMAINT), server('api-2', ADMIN.FDRAIN), server('api-3')],
        [server('api-1', ADMIN.FMAINT), server('api-2', ADMIN.FDRAIN), server('api-3')],
      ),
    ).toEqual([]);
  });

  it('follows maint to drain and back (maint wins over a drain the fallback has)', () => {
    expect(mirrorSteps([server('api-1', ADMIN.FDRAIN)], [server('api-1', ADMIN.FMAINT)])).toEqual([
      { server: 'api-1', state: 'drain' },
    ]);
    expect(mirrorSteps([server('api-1', ADMIN.FMAINT)], [server('api-1', ADMIN.FDRAIN)])).toEqual([
      { server: 'api-1', state: 'maint' },
    ]);
  });

  it("ends a fallback maint, and a running server's fallback drain, once the main server is in neither: whoever set them, with no memory", () => {
    expect(mirrorSteps([server('api-1')], [server('api-1', ADMIN.FMAINT)])).toEqual([
      { server: 'api-1', state: 'ready' },
    ]);
    expect(mirrorSteps([server('api-1')], [server('api-1', ADMIN.FDRAIN)])).toEqual([
      { server: 'api-1', state: 'ready' },
    ]);
  });

  it("leaves the drain of a server that fails its fallback checks: an instance's agent, as it shuts down", () => {
    expect(mirrorSteps([server('api-1')], [{ ...server('api-1', ADMIN.FDRAIN), running: false }])).toEqual(
      [],
    );
  });

  it('leaves alone a server that only one backend has', () => {
    expect(mirrorSteps([server('api-9', ADMIN.FMAINT)], [server('api-1', ADMIN.FMAINT)])).toEqual([]);
  });
});
