import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'cdk.out/**', '.lifeboat/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites share one libvirt, one sshd and fixed ports: run files one at a time.
    fileParallelism: false,
  },
});
