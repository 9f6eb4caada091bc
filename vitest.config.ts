import { configDefaults, defineConfig } from 'vitest/config';

// Two tiers (ARCHITECTURE.md rule 9): fast unit tests beside the code with memory adapters, and
// integration tests in test/ against the real processes of the local stack. `npm test` runs
// test/run.ts, which brings the stack up when needed and runs both projects in order.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'src/**/*.test.ts',
            'control-plane/**/*.test.ts',
            'stack/**/*.test.ts',
            'bench/**/*.test.ts',
          ],
          environment: 'node',
          allowOnly: false,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // `stack down` must never run in the middle of the others: its own project, run last
          exclude: [...configDefaults.exclude, 'test/lifecycle/**'],
          environment: 'node',
          allowOnly: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
      {
        test: {
          name: 'lifecycle',
          include: ['test/lifecycle/**/*.test.ts'],
          environment: 'node',
          allowOnly: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
