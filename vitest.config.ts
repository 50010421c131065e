import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real servers, real TLS and a real broker: give them time on a shared 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: more workers only thrash.
    maxWorkers: 2,
    pool: 'forks',
    // kafkajs's idle timer loop and its TimeoutNegativeWarning, fixed in test processes too.
    setupFiles: ['test/support/kafkajs-timer-fix.ts'],
  },
});
