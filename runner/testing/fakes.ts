/**
 * Small fakes of the runner's edges for unit tests: Step Functions task-token calls, the SQS
 * queue, progress, drivers. Each records what it was asked so tests assert on what the state
 * machine, the queue or the VM would have seen.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackupTask, Task, TaskDatastore } from '#core/contracts/tasks.ts';
import type { DatastoreDriver } from '#drivers/datastore/driver.ts';
import type { DiskDriver } from '#drivers/disk/driver.ts';
import { describeFileArtifact, type Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { type HostKeyPair, sealContext, sealSecrets } from '#platform/sealed-secrets.ts';
import { Executor } from '#runner/executor.ts';
import { Journal } from '#runner/journal.ts';
import { type Logger, silentLogger } from '#runner/log.ts';
import type { QueueApi, QueueMessage } from '#runner/poller.ts';
import type { ProgressFields } from '#runner/progress.ts';
import { Reporter, type TaskTokenApi } from '#runner/reporter.ts';
import { hostKeyPath, sealedSecretResolver } from '#runner/sealed-secrets.ts';
import type { Drivers, TaskContext } from '#runner/tasks/context.ts';
import { TEST_HOST_KEY } from '../../test/helpers/host-key.ts';

/** An error as the AWS SDK raises it: only its `name` matters. */
export function awsError(name: string, message = name): Error {
  return Object.assign(new Error(message), { name });
}

export type TokenCall =
  | { call: 'success'; token: string; output: unknown }
  | { call: 'failure'; token: string; error: string; cause: string }
  | { call: 'heartbeat'; token: string };

/** Records SendTask* calls; `gone` tokens answer TaskTimedOut like Step Functions does. */
export class FakeTaskTokens implements TaskTokenApi {
  readonly calls: TokenCall[] = [];
  readonly gone = new Set<string>();
  /** Errors thrown by the next calls, in order (then calls succeed). */
  readonly failNext: Error[] = [];

  private check(token: string): void {
    const next = this.failNext.shift();
    if (next) throw next;
    if (this.gone.has(token)) throw awsError('TaskTimedOut', 'Task Timed Out');
  }
  async sendSuccess(token: string, output: string) {
    this.check(token);
    this.calls.push({ call: 'success', token, output: JSON.parse(output) });
  }
  async sendFailure(token: string, error: string, cause: string) {
    this.check(token);
    this.calls.push({ call: 'failure', token, error, cause });
  }
  async sendHeartbeat(token: string) {
    this.calls.push({ call: 'heartbeat', token });
    this.check(token);
  }
  answers(): Exclude<TokenCall, { call: 'heartbeat' }>[] {
    return this.calls.filter((c) => c.call !== 'heartbeat') as Exclude<TokenCall, { call: 'heartbeat' }>[];
  }
}

/** A queue holding messages until deleted. */
export class FakeQueue implements QueueApi {
  readonly messages: QueueMessage[] = [];
  readonly deleted: string[] = [];
  private next = 1;

  push(body: unknown): QueueMessage {
    const id = String(this.next++);
    const message = {
      id,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      receiptHandle: `rh-${id}`,
    };
    this.messages.push(message);
    return message;
  }
  async receive(max: number): Promise<QueueMessage[]> {
    const waiting = this.messages.filter((m) => !this.deleted.includes(m.receiptHandle)).slice(0, max);
    // An empty long poll takes time, as SQS's does: never a busy loop.
    if (waiting.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    return waiting;
  }
  async delete(receiptHandle: string) {
    this.deleted.push(receiptHandle);
  }
}

/** A fresh temp folder, removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-runner-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A fake disk driver's parts: any of the interface, or the file driver's own pieces a point is
 * restored with (`restoreDisk` for a lone FULL, `restoreChain` for a chain).
 */
export type FakeDisk = Partial<DiskDriver> & Partial<Pick<Qcow2Driver, 'restoreDisk' | 'restoreChain'>>;

/** Drivers from partial fakes; a method a test did not give throws. */
export function fakeDrivers(disk: FakeDisk = {}, store: Partial<DatastoreDriver> = {}): Drivers {
  const missing = (what: string) => () => {
    throw new Error(`fake ${what} not given`);
  };
  const diskDriver = {
    name: 'qcow2',
    prepareBackup: missing('prepareBackup'),
    reconcile: async () => [],
    restoreDisk: missing('restoreDisk'),
    prepareInPlace: missing('prepareInPlace'),
    // The file driver's names, so restores and flattens of fake points find their driver.
    describeArtifact: (name: string) => describeFileArtifact(name),
    flattenedName: (id: number) => `disk.${id}.qcow2`,
    restoredFileName: (base: string) => `${base}.qcow2`,
    ...disk,
  } as DiskDriver & Pick<Qcow2Driver, 'restoreDisk'> & Partial<Pick<Qcow2Driver, 'restoreChain'>>;
  // A fake given only the old pieces restores a point as the file driver did with them.
  diskDriver.restorePoint ??= async (files, toPath, options) => {
    const typed = files.map((f) => ({ path: f.path, format: describeFileArtifact(f.name)?.format ?? 'raw' }));
    const [full] = typed;
    if (typed.length === 1 && full) return diskDriver.restoreDisk(full.path, full.format, toPath, options);
    if (!diskDriver.restoreChain) throw new Error('fake restoreChain not given');
    return diskDriver.restoreChain(typed, toPath, options);
  };
  const storeDriver = {
    name: 'restic',
    readsNbd: true,
    backup: missing('backup'),
    restore: missing('restore'),
    download: missing('download'),
    monitor: missing('monitor'),
    rm: missing('rm'),
    stat: missing('stat'),
    verify: missing('verify'),
    catalog: missing('catalog'),
    reconcile: async () => {},
    ...store,
  } as DatastoreDriver;
  return { disk: () => diskDriver, disks: () => [diskDriver], datastore: () => storeDriver };
}

/** The runner's pieces over fakes, in a temp state folder. */
export async function fakeRunner(
  opts: {
    run?: (task: Task, ctx: TaskContext) => Promise<unknown>;
    drivers?: Drivers;
    /** The host key in the state folder (default the tests' host key); null: none written. */
    hostKey?: HostKeyPair | null;
    /** The host's restore roots (default: `<temp>/restores`). */
    restoreRoots?: string[];
    /** The Ceph pools the host lets restores write into (default none). */
    restorePools?: string[];
    /** The runner's host id (absent: tasks are not checked against it). */
    hostId?: number;
    /** The runner's logger (default: silent). */
    log?: Logger;
  } = {},
) {
  const temp = await tempDir();
  const hostKey = opts.hostKey === undefined ? TEST_HOST_KEY : opts.hostKey;
  if (hostKey) await writeFile(hostKeyPath(temp.dir), hostKey.privateKey, { mode: 0o600 });
  const journal = await Journal.open(join(temp.dir, 'journal.jsonl'));
  const tokens = new FakeTaskTokens();
  const reporter = new Reporter(tokens, silentLogger, 1);
  const progress: { executionId: string; fields: ProgressFields }[] = [];
  const executor = new Executor({
    journal,
    reporter,
    drivers: opts.drivers ?? fakeDrivers(),
    // The daemon's own resolver: tasks carry their secrets sealed to the host key.
    secrets: sealedSecretResolver(hostKeyPath(temp.dir)),
    progress: async (executionId, fields) => {
      progress.push({ executionId, fields });
    },
    stateDir: temp.dir,
    restoreRoots: opts.restoreRoots ?? [join(temp.dir, 'restores')],
    ...(opts.restorePools ? { restorePools: opts.restorePools } : {}),
    ...(opts.hostId !== undefined ? { hostId: opts.hostId } : {}),
    log: opts.log ?? silentLogger,
    ...(opts.run ? { run: opts.run } : {}),
  });
  return { ...temp, journal, tokens, reporter, executor, progress };
}

/** Waits until `check` holds (polling every 10 ms), failing after `ms`. */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A task datastore (restic, id 100 unless overridden) carrying `values` sealed as Admit seals
 * them: to `key` (default the fake runner's host key) for `ds/<id>`.
 */
export function sealedDatastore(
  values: Record<string, string>,
  overrides: Partial<TaskDatastore> = {},
  key: Pick<HostKeyPair, 'publicKey'> = TEST_HOST_KEY,
): TaskDatastore {
  const id = overrides.id ?? 100;
  return {
    id,
    driver: 'restic',
    attributes: {},
    sealedSecrets: sealSecrets(values, key.publicKey, sealContext(id)),
    ...overrides,
  };
}

/** A valid backup task message. */
export function backupTask(overrides: Partial<BackupTask> = {}): BackupTask {
  return {
    v: 1,
    kind: 'backup',
    taskId: '17/RunOnHost',
    token: 'token-1',
    heartbeatSeconds: 120,
    vm: { id: 3, domain: 'web-1', state: 'RUNNING' },
    disks: [
      {
        id: 0,
        target: 'vda',
        source: '/var/lib/libvirt/images/web-1.qcow2',
        format: 'qcow2',
        driver: 'qcow2',
      },
    ],
    config: { FS_FREEZE: 'NONE', MODE: 'FULL', INCREMENT_MODE: 'CBT' },
    increment: null,
    datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }, { attributes: { BASE_PATH: '/srv/backup' } }),
    imageId: 9,
    ...overrides,
  };
}
