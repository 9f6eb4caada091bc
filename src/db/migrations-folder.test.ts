import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findMigrationsFolder, migrationCount } from './migrations-folder.js';

describe('migrations folder', () => {
  it("finds this checkout's migrations and counts its journal's entries, one per SQL file", () => {
    const folder = findMigrationsFolder();
    expect(folder).toMatch(/migrations$/);
    const sqlFiles = readdirSync(folder!).filter((f) => f.endsWith('.sql')).length;
    expect(sqlFiles).toBeGreaterThan(0);
    expect(migrationCount(folder)).toBe(sqlFiles);
  });

  it('answers undefined for a folder without a journal', () => {
    expect(migrationCount('/nonexistent-folder')).toBeUndefined();
  });
});
