/**
 * A restic datastore's password never reaches the runner's log, journal or task answers, even
 * when a tool or driver echoes it into an error that a task handler logs on its own (a failed
 * release after a failed backup, a failed datastore reconcile in cleanup).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CleanupTask } from '#core/contracts/tasks.ts';
import type { PreparedBackup } from '#drivers/disk/driver.ts';
import { ExecError } from '#drivers/exec.ts';
import { Executor } from '#runner/executor.ts';
import { Journal } from '#runner/journal.ts';
import type { Logger } from '#runner/log.ts';
import { Reporter } from '#runner/reporter.ts';
import { hostKeyPath, sealedSecretResolver } from '#runner/sealed-secrets.ts';
import type { Drivers } from '#runner/tasks/context.ts';
import { TEST_HOST_KEY } from '../test/helpers/host-key.ts';
import { backupTask, FakeTaskTokens, fakeDrivers, sealedDatastore, tempDir, until } from './testing/fakes.ts';

const PASSWORD = 'Tr0ub4dor&3-horse-battery';
const SECRETS = { 'ds/100': { RESTIC_PASSWORD: PASSWORD } };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A logger that keeps every line as the JSON the real one would write. */
function capturingLogger(lines: string[], bound: Record<string, unknown> = {}): Logger {
  const logger = (level: string, message: string, fields: Record<string, unknown> = {}) => {
    lines.push(JSON.stringify({ level, message, ...bound, ...fields }));
  };
  return Object.assign(logger, {
    child: (more: Record<string, unknown>) => capturingLogger(lines, { ...bound, ...more }),
  });
}

/** The runner's executor over fakes, logging into `lines`. */
async function runner(drivers: Drivers) {
  const temp = await tempDir();
  cleanups.push(temp.remove);
  const lines: string[] = [];
  const log = capturingLogger(lines);
  const journalFile = join(temp.dir, 'journal.jsonl');
  await writeFile(hostKeyPath(temp.dir), TEST_HOST_KEY.privateKey, { mode: 0o600 });
  const tokens = new FakeTaskTokens();
  const executor = new Executor({
    journal: await Journal.open(journalFile),
    reporter: new Reporter(tokens, log, 1),
    drivers,
    secrets: sealedSecretResolver(hostKeyPath(temp.dir)),
    progress: async () => {},
    stateDir: temp.dir,
    log,
  });
  /** Everything the runner wrote or sent about its tasks. */
  const everything = async () =>
    [...lines, await readFile(journalFile, 'utf8'), JSON.stringify(tokens.calls)].join('\n');
  return { executor, tokens, lines, everything };
}

/** A tool failing with the password in its stderr, as restic or ssh might print it. */
const echoingTool = () =>
  new ExecError('restic backup --repo /srv/backup/3', 1, undefined, `Fatal: wrong password "${PASSWORD}"`);

function prepared(release: () => Promise<void>): PreparedBackup {
  return {
    files: [
      {
        diskId: 0,
        name: 'disk.0.qcow2',
        source: { kind: 'file', path: '/img/web-1.qcow2' },
        format: 'qcow2',
        virtualSize: 1024,
      },
    ],
    template: '<domain><name>web-1</name></domain>',
    state: 'RUNNING',
    release,
  };
}

describe('a failing task with a restic password', () => {
  it('backup: the upload error and the failed release are logged, the password nowhere', async () => {
    const r = await runner(
      fakeDrivers(
        {
          prepareBackup: async () =>
            prepared(async () => {
              throw new Error(`cannot release: qemu says ${PASSWORD}`);
            }),
        },
        {
          backup: async () => {
            throw echoingTool();
          },
        },
      ),
    );
    await r.executor.accept(
      backupTask({
        datastore: sealedDatastore(SECRETS['ds/100'], { attributes: { BASE_PATH: '/srv/backup' } }),
      }),
    );
    await until(() => r.tokens.answers().length === 1);

    expect(r.tokens.answers()[0]).toMatchObject({ call: 'failure', error: 'ExecError' });
    expect(r.lines.some((line) => line.includes('release after a failed backup failed'))).toBe(true);
    expect(r.lines.some((line) => line.includes('task failed'))).toBe(true);
    expect(await r.everything()).not.toContain(PASSWORD);
  });

  it('cleanup: a datastore reconcile that fails is logged without the password', async () => {
    const r = await runner(
      fakeDrivers(
        { reconcile: async () => [] },
        {
          reconcile: async () => {
            throw echoingTool();
          },
        },
      ),
    );
    const task: CleanupTask = {
      v: 1,
      kind: 'cleanup',
      taskId: '17/Cleanup',
      token: 'token-2',
      heartbeatSeconds: 120,
      failedTaskId: '17/RunOnHost',
      vm: { id: 3, domain: 'web-1', state: 'RUNNING' },
      imageId: 9,
      datastore: sealedDatastore(SECRETS['ds/100'], { attributes: { BASE_PATH: '/srv/backup' } }),
    };
    await r.executor.accept(task);
    await until(() => r.tokens.answers().length === 1);

    expect(r.lines.some((line) => line.includes('datastore reconcile failed'))).toBe(true);
    expect(await r.everything()).not.toContain(PASSWORD);
  });
});
