import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Test files that start something the machine has one of, or that is too heavy to run twice at
 * once on a small machine: DynamoDB Local (a JVM), fauxqs, sshd, libvirt and its VMs, a second
 * libvirtd or runner, a whole local stack (`localUp`, `startControlPlane`). They make the
 * `integration` project and run one file at a time, with nothing else beside them.
 * test/suite-split.test.ts fails when a file outside this list starts one of these, so a new
 * suite that does must be listed here.
 */
export const INTEGRATION = [
  'test/e2e/**/*.test.ts',
  'test/functions/**/*.test.ts',
  'test/runner/**/*.test.ts',
  'test/cli/accounts-stack.test.ts',
  'test/cli/admin-bootstrap.test.ts',
  'test/drivers/disk-cbt.test.ts',
  'test/drivers/disk-qcow2.test.ts',
  'test/drivers/disk-mixed.test.ts',
  'test/drivers/disk-rbd-pool.test.ts',
  'test/drivers/disk-rbd-restart.test.ts',
  'test/drivers/disk-rbd.test.ts',
  'test/drivers/disk-snapshot.test.ts',
  'test/drivers/restic.test.ts',
  'test/drivers/rsync.test.ts',
  'test/drivers/rsync-receive.test.ts',
  'test/helpers/ceph.test.ts',
  'test/infra/bundled-errors.test.ts',
  'test/local/bundles.test.ts',
  'test/local/console.test.ts',
  'test/local/e2e.test.ts',
  'test/local/gateway-authorizer.test.ts',
  'test/local/iam.test.ts',
  'test/local/maintenance.test.ts',
  'test/local/runner-enrollment.test.ts',
  'test/local/scheduling.test.ts',
  'test/local/sealed.test.ts',
  'test/local/sessions.test.ts',
  'test/security/hostile-api.test.ts',
  'test/security/hostile-local.test.ts',
];

/**
 * Tests of the real `lifeboat` command (a child process per call, against a fake API on a free
 * port, in its own LIFEBOAT_HOME): self-contained, so they run in parallel, but each call costs a
 * Node start, so they are kept out of the quick `unit` project.
 */
export const CLI = ['test/cli/**/*.test.ts'];

/** Every test file: `*.test.ts` beside the code it tests, and cross-folder ones under test/. */
export const ALL_TESTS = ['**/*.test.ts'];
export const NOT_TESTS = ['**/node_modules/**', 'cdk.out/**', '.lifeboat/**'];

const cores = Math.max(2, availableParallelism());

/**
 * Builds the `lifeboat` command into one bundle once per run for the projects that run it a lot
 * (about 0.8 s less per call than bin/lifeboat.js through tsx); see test/helpers/cli-bundle.ts.
 */
const CLI_BUNDLE = 'test/helpers/cli-bundle.ts';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two groups, one after the other (sequence.groupOrder): first `unit` and `cli` together,
    // as many files at a time as there are cores; then `integration`, one file at a time with
    // nothing else running, because its files share one libvirt, one sshd and the machine's CPU.
    // (vitest runs projects of the same groupOrder together; they must have the same maxWorkers.)
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ALL_TESTS,
          exclude: [...NOT_TESTS, ...INTEGRATION, ...CLI],
          maxWorkers: cores,
          // Workers reused across files: aws-cdk-lib, the AWS SDK and the sources are loaded once
          // per worker instead of once per file (about 40% of the CPU time of this project).
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'cli',
          include: CLI,
          globalSetup: [CLI_BUNDLE],
          exclude: [...NOT_TESTS, ...INTEGRATION],
          maxWorkers: cores,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: INTEGRATION,
          // One DynamoDB Local for the whole project, each file in tables of its own; one Ceph
          // cluster, started by the first file that needs it, each file in a pool of its own.
          globalSetup: [CLI_BUNDLE, 'test/helpers/dynamodb-local.ts', 'test/helpers/ceph-pool.ts'],
          // restic with cheap keys for the repositories the tests make (test/helpers/restic-shim.ts).
          setupFiles: ['test/helpers/setup-restic-shim.ts'],
          exclude: NOT_TESTS,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
