/**
 * drizzle-kit: `npx drizzle-kit generate` writes migrations/ from src/db/schema.ts. Generation
 * needs no database; `npm run migrate` (src/db/migrate-cli.ts) applies the result to every shard
 * master named in etcd.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'mysql',
  schema: './src/db/schema.ts',
  out: './migrations',
});
