import { describe, expect, it } from 'vitest';
import { schemaLine } from './schema-state.js';

describe('schemaLine', () => {
  const migrate = '`npm run migrate -- --shard s9`';

  it('says to migrate a database with no record of migrations', () => {
    expect(schemaLine('s9', { missing: true }, 7)).toBe(
      `next: put the schema on it with ${migrate} before a tenant is created there`,
    );
  });

  it('says nothing is to be done when every migration of the build is applied', () => {
    expect(schemaLine('s9', { applied: 7 }, 7)).toBe('schema: up to date (7 migrations applied there)');
  });

  it('says to migrate a database some migrations behind, with both counts', () => {
    expect(schemaLine('s9', { applied: 5 }, 7)).toBe(
      `next: bring its schema up to date with ${migrate} (5 of this build's 7 migrations applied there)`,
    );
  });

  it('gives the command, and why it could not look, when it could not', () => {
    expect(
      schemaLine('s9', { unchecked: 'no database password (SHARDGATE_DB_PASSWORD is not set)' }, 7),
    ).toBe(
      `next: unless its database has this build's schema already, put it there with ${migrate} before a tenant is created there (not checked: no database password (SHARDGATE_DB_PASSWORD is not set))`,
    );
  });

  it("names the applied count without judging it when the build's journal was not found", () => {
    expect(schemaLine('s9', { applied: 7 }, undefined)).toBe(
      `schema: 7 migration(s) applied there (this build's own count not found: run ${migrate} to be sure)`,
    );
  });

  it('says a database ahead of this build is so, not up to date', () => {
    expect(schemaLine('s9', { applied: 9 }, 7)).toBe(
      "schema: 9 migrations applied there, more than this build's 7 (a newer build migrated it)",
    );
  });

  it('says to create a database the master does not have, before migrating it', () => {
    expect(schemaLine('s9', { unchecked: "shard s9 (10.0.0.5:3306): Unknown database 'lib'" }, 7)).toBe(
      `next: create its database on the master (shard s9 (10.0.0.5:3306): Unknown database 'lib'; docs/operations.md, "Adding a shard"), then put the schema there with ${migrate}`,
    );
  });
});
