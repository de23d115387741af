/**
 * Backups that fail, through local mode with its real runner: what the operator sees (exit code,
 * one clear error, the execution's state and error) and what must hold afterwards (the VM runs
 * on its own disks with no overlay in their chain, nothing left in the runner's work folders, the
 * VM unlocked, no restic lock, no secret in any output or log, the next backup succeeds).
 * A runner killed mid-upload is runner-restart.test.ts's (both backup kinds, same checks).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { blockList, createTestVm, guestWrite, readDisk, type TestVm, virsh } from '../helpers/libvirt.ts';
import { freePort, type Sshd, startSshd } from '../helpers/sshd.ts';
import {
  backup,
  guestSha256,
  leftoverOverlays,
  removeHome,
  type Stack,
  startStack,
  until,
} from './harness.ts';

const MiB = 1024 * 1024;
let stack: Stack;
let sshd: Sshd;
let scratch: string;
let good: Datastore;
const vms: TestVm[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-fail-'));
  sshd = await startSshd();
  stack = await startStack({ sshd });
  await stack.host();
  good = await createDatastore('good', {
    BASE_PATH: join(scratch, 'good'),
    RESTIC_PASSWORD: 'good-password-1',
  });
}, 180_000);

afterAll(async () => {
  for (const vm of vms) await vm.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

async function createDatastore(name: string, attrs: Record<string, string>): Promise<Datastore> {
  return stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    name,
    '--driver',
    'restic',
    ...Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
  ]);
}

/** A running VM with one 64 MiB disk; `randomMiB` of incompressible data make uploads slow. */
async function runningVm(name: string, randomMiB = 0): Promise<{ test: TestVm; vm: Vm; sha: string }> {
  const test = await createTestVm({ name, disks: [{ sizeMiB: 64, format: 'qcow2' }], running: false });
  vms.push(test);
  if (randomMiB > 0) {
    const file = join(scratch, `${name}.random`);
    await writeFile(file, randomBytes(randomMiB * MiB));
    await run({
      file: 'qemu-img',
      args: ['convert', '-n', '-f', 'raw', '-O', 'qcow2', file, test.disks[0]?.path as string],
    });
    await rm(file);
  }
  // What the guest sees before it starts (the firmware writes nothing).
  const sha = await guestSha256(test.disks[0]?.path as string, 'qcow2');
  await virsh('start', name);
  return { test, vm: await stack.vm(name, 'RUNNING'), sha };
}

/** The VM's disks are its own files again, none with a backing file (no overlay left). */
async function expectIntact(test: TestVm, original: Record<string, string>): Promise<void> {
  expect(await blockList(test.domain)).toEqual(original);
  for (const path of Object.values(original)) {
    const info = JSON.parse(
      (await run({ file: 'qemu-img', args: ['info', '-U', '--output=json', path] })).stdout,
    );
    expect(info['backing-filename']).toBeUndefined();
  }
  expect(await leftoverOverlays(stack)).toEqual([]);
}

/** The VM as the API shows it: unlocked, in `state`. */
async function expectUnlocked(vm: Vm, state: Vm['state'] = 'RUNNING'): Promise<void> {
  const now = await stack.json<Vm>(['vm', 'show', String(vm.id)]);
  expect(now.lock).toBeUndefined();
  expect(now.state).toBe(state);
}

/** The backup's image is not READY (ERROR, or removed) and not in BACKUP_IDS. */
async function expectNoImage(vm: Vm, execution: Execution): Promise<void> {
  if (execution.imageId !== undefined) {
    const out = await stack.cli(['image', 'show', String(execution.imageId), '--json']);
    if (out.code === 0) expect((JSON.parse(out.stdout) as Image).state).toBe('ERROR');
  }
  const now = await stack.json<Vm>(['vm', 'show', String(vm.id)]);
  expect(now.backups.BACKUP_IDS).not.toContain(execution.imageId);
}

/** Waits until the execution runs its upload (some bytes sent). */
function uploading(executionId: string): Promise<Execution> {
  return until(
    `execution ${executionId} uploading`,
    async () => {
      const execution = await stack.api<Execution>('GET', `/executions/${executionId}`);
      if (!['QUEUED', 'RUNNING'].includes(execution.state))
        throw new Error(`execution ended early: ${JSON.stringify(execution)}`);
      return execution.phase === 'uploading' && execution.bytesDone > 0 ? execution : undefined;
    },
    60_000,
    200,
  );
}

/** `vm backup` without --wait: the queued execution. */
async function startBackup(vm: Vm, datastore: Datastore): Promise<Execution> {
  return stack.json<Execution>(['vm', 'backup', String(vm.id), '-d', String(datastore.id)]);
}

/** Follows an execution to its end with `execution show`. */
function ended(executionId: string, timeoutMs = 90_000): Promise<Execution> {
  return until(
    `execution ${executionId} to end`,
    async () => {
      const execution = await stack.api<Execution>('GET', `/executions/${executionId}`);
      return ['QUEUED', 'RUNNING'].includes(execution.state) ? undefined : execution;
    },
    timeoutMs,
  );
}

/** `restic list locks` of the VM's repository in a local datastore. */
async function resticLocks(datastore: Datastore, password: string, vmId: number): Promise<string[]> {
  const repo = join(datastore.attributes.BASE_PATH as string, String(vmId));
  const out = await run({
    file: 'restic',
    args: ['-r', repo, '--no-lock', 'list', 'locks'],
    env: { RESTIC_PASSWORD: password },
  });
  return out.stdout.split('\n').filter(Boolean);
}

describe('failed backups leave the VM as it was', () => {
  it('an unreachable datastore: FAILED with DatastoreUnreachable, VM intact and unlocked, next backup succeeds', async () => {
    const { test, vm } = await runningVm('lb-e2e-unreach');
    const original = await blockList(test.domain);
    const closed = await createDatastore('closed-port', {
      BASE_PATH: '/srv/nowhere',
      RESTIC_SFTP_SERVER: `127.0.0.1:${await freePort()}`,
      RESTIC_PASSWORD: 'unreachable-pw',
    });
    const out = await backup(stack, vm.id, closed.id);
    expect(out.code).toBe(1);
    expect(out.execution?.state).toBe('FAILED');
    expect(out.execution?.error?.name).toBe('DatastoreUnreachable');
    expect(out.execution?.error?.message).toMatch(/unreachable/i);
    expect(out.stderr).toMatch(/FAILED: DatastoreUnreachable: .*unreachable/);
    await expectIntact(test, original);
    await expectUnlocked(vm);
    await expectNoImage(vm, out.execution as Execution);

    const next = await backup(stack, vm.id, good.id);
    expect(next.execution?.state).toBe('SUCCEEDED');
    expect(next.code).toBe(0);
    await expectIntact(test, original);
  });

  it('a wrong RESTIC_PASSWORD: FAILED with DatastoreAuthFailed, the password in no output or log', async () => {
    const { test, vm } = await runningVm('lb-e2e-badpw');
    const original = await blockList(test.domain);
    // The repository of this VM exists in `good`, with good's password.
    expect((await backup(stack, vm.id, good.id)).code).toBe(0);
    const wrongPassword = 'wrong-password-7f3a';
    const wrong = await createDatastore('wrong-password', {
      BASE_PATH: good.attributes.BASE_PATH as string,
      RESTIC_PASSWORD: wrongPassword,
    });
    const out = await backup(stack, vm.id, wrong.id);
    expect(out.code).toBe(1);
    expect(out.execution?.state).toBe('FAILED');
    expect(out.execution?.error?.name).toBe('DatastoreAuthFailed');
    await expectIntact(test, original);
    await expectUnlocked(vm);
    const shown = await stack.cli(['execution', 'show', String(out.execution?.id), '--json']);
    const datastore = await stack.cli(['datastore', 'show', String(wrong.id), '--json']);
    for (const text of [out.stdout, out.stderr, shown.stdout, datastore.stdout, await stack.logs()]) {
      expect(text).not.toContain(wrongPassword);
      expect(text).not.toContain('good-password-1');
    }
  });

  it('the VM destroyed mid-backup: the backup holds the disk at snapshot time, the guest writes before the destroy are kept', async () => {
    const { test, vm, sha: before } = await runningVm('lb-e2e-destroyed', 16);
    const original = await blockList(test.domain);
    const slow = await createDatastore('slow', {
      BASE_PATH: join(scratch, 'slow'),
      RESTIC_PASSWORD: 'slow-pw',
      RESTIC_BWLIMIT: '2048',
      RESTIC_COMPRESSION: 'off',
    });
    const queued = await startBackup(vm, slow);
    await uploading(queued.id);
    // Written after the snapshot (into the overlay), then the VM is pulled away.
    await guestWrite(test.domain, 'vda', 60 * MiB, MiB, 0xdd);
    await virsh('destroy', test.domain);
    const execution = await ended(queued.id);
    // The snapshot was consistent when taken: a complete backup of that instant, or a clear failure.
    if (execution.state === 'FAILED') {
      expect(execution.error?.message).toContain(test.domain);
      await expectNoImage(vm, execution);
    } else {
      expect(execution.state).toBe('SUCCEEDED');
      const image = await stack.json<Image>(['image', 'show', String(execution.imageId)]);
      expect(image.state).toBe('READY');
      const dir = join(scratch, 'restored-destroyed');
      const restored = await stack.json<Execution>([
        'image',
        'restore',
        String(image.id),
        '--to',
        dir,
        '--name',
        'r',
        '--wait',
      ]);
      expect(restored.state).toBe('SUCCEEDED');
      expect(await guestSha256(join(dir, 'r-disk-0.qcow2'), 'qcow2')).toBe(before);
    }
    // Its persistent definition names its own files, with no overlay in their chain, and the
    // write made after the snapshot is in its disk: nothing the guest wrote is lost.
    expect(await blockList(test.domain, true)).toEqual(original);
    const path = test.disks[0]?.path as string;
    const info = JSON.parse((await run({ file: 'qemu-img', args: ['info', '--output=json', path] })).stdout);
    expect(info['backing-filename']).toBeUndefined();
    expect([...(await readDisk(path, 'qcow2', 60 * MiB, 4))]).toEqual([0xdd, 0xdd, 0xdd, 0xdd]);
    expect(await leftoverOverlays(stack)).toEqual([]);
    await stack.vm(test.domain, 'POWEROFF');
    await expectUnlocked(vm, 'POWEROFF');
    expect(await resticLocks(slow, 'slow-pw', vm.id)).toEqual([]);
  });
});
