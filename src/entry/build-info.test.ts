import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { buildLabel, readBuildInfo, registerBuildInfo } from './build-info.js';

describe('build info', () => {
  const dir = mkdtempSync(join(tmpdir(), 'build-info-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads the version and commit npm run build wrote; anything else reads unknown', () => {
    const good = file('good.json', '{"version":"0.1.0","commit":"1a2b3c4d5e6f-dirty"}');
    expect(readBuildInfo(good)).toEqual({ version: '0.1.0', commit: '1a2b3c4d5e6f-dirty' });
    expect(buildLabel(readBuildInfo(good))).toBe('0.1.0+1a2b3c4d5e6f-dirty');
    expect(readBuildInfo(join(dir, 'none.json'))).toEqual({ version: 'unknown', commit: 'unknown' });
    expect(readBuildInfo(file('bad.json', '{"version":'))).toEqual({ version: 'unknown', commit: 'unknown' });
    // a value a label or a log line would choke on is not taken
    // nor one longer than 40 characters (the label must fit the registration's 100)
    expect(readBuildInfo(file('long.json', `{"version":"${'9'.repeat(41)}","commit":"c"}`)).version).toBe(
      'unknown',
    );
    expect(readBuildInfo(file('odd.json', '{"version":"1\\n2","commit":7}'))).toEqual({
      version: 'unknown',
      commit: 'unknown',
    });
  });

  it('exports shardgate_build_info with both as labels', async () => {
    const metrics = createPromMetrics();
    registerBuildInfo(metrics, { version: '0.1.0', commit: 'abc' });
    expect((await metrics.render()).body).toMatch(
      /^shardgate_build_info\{version="0.1.0",commit="abc"\} 1$/m,
    );
  });
});
