/**
 * Real backups and restores through local mode, as an operator runs them: real VMs (libvirt),
 * the local runner, restic (local path and over SFTP) and rsync over ssh to a loopback sshd.
 * Each restore is checked byte for byte against the guest-visible disk at backup time.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { blockList, createTestVm, guestWrite, readDisk, type TestVm } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import {
  backup,
  guestSha256,
  leftoverOverlays,
  removeHome,
  restoreToFolder,
  type Stack,
  startStack,
} from './harness.ts';

const MiB = 1024 * 1024;
let stack: Stack;
let sshd: Sshd;
let scratch: string;
const vms: TestVm[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-data-'));
  sshd = await startSshd();
  stack = await startStack({ sshd });
  await stack.host();
}, 180_000);

afterAll(async () => {
  for (const vm of vms) await vm.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

/** `datastore create ... --json`; the secret never comes back. */
async function createDatastore(name: string, driver: string, attrs: Record<string, string>) {
  const ds = await stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    name,
    '--driver',
    driver,
    ...Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
  ]);
  if (attrs.RESTIC_PASSWORD) expect(JSON.stringify(ds)).not.toContain(attrs.RESTIC_PASSWORD);
  return ds;
}

/** sha256 of a raw disk of `size` bytes that is zero except `writes` (offset, length, byte). */
function expectedSha(size: number, writes: [number, number, number][]): string {
  const buffer = Buffer.alloc(size);
  for (const [offset, length, byte] of writes) buffer.fill(byte, offset, offset + length);
  return createHash('sha256').update(buffer).digest('hex');
}

/** `qemu-img info` of a file: its format and backing file, if any. */
async function imageInfo(path: string): Promise<{ format: string; 'backing-filename'?: string }> {
  return JSON.parse((await run({ file: 'qemu-img', args: ['info', '-U', '--output=json', path] })).stdout);
}

/** `image restore IMAGEID --to DIR --name NAME --wait --json`, which must succeed. */
async function restore(image: Image, name: string): Promise<{ dir: string; execution: Execution }> {
  const dir = join(scratch, name);
  return { dir, execution: await restoreToFolder(stack, image.id, { dir, name }) };
}

/** A successful backup and the READY image it wrote, checked from the user's side. */
async function backupOk(vm: Vm, datastore: Datastore, diskIds: number[]): Promise<Image> {
  const out = await backup(stack, vm.id, datastore.id);
  expect(out.stderr).not.toMatch(/error/i);
  expect(out.code).toBe(0);
  expect(out.execution).toMatchObject({ kind: 'backup', state: 'SUCCEEDED', vmId: vm.id });
  const image = await stack.json<Image>(['image', 'show', String(out.execution?.imageId)]);
  // The fields operators script (CLI.md).
  expect(image).toMatchObject({
    id: out.execution?.imageId,
    state: 'READY',
    vmId: vm.id,
    datastoreId: datastore.id,
    mode: 'FULL',
  });
  expect(typeof image.name).toBe('string');
  expect(image.disks.map((d) => d.id)).toEqual(diskIds);
  for (const disk of image.disks) {
    expect(disk.size).toBeGreaterThan(0);
    expect(disk.virtualSize).toBe(vm.disks.find((d) => d.id === disk.id)?.size);
  }
  expect(image.size).toBe(image.disks.reduce((sum, d) => sum + d.size, 0));
  const after = await stack.json<Vm>(['vm', 'show', String(vm.id)]);
  expect(after.backups.BACKUP_IDS).toContain(image.id);
  expect(after.lock).toBeUndefined();
  expect(await leftoverOverlays(stack)).toEqual([]);
  return image;
}

describe('backup and restore of real VMs through local mode', () => {
  it('a running VM with a volatile disk: restic on a local path, restore equals the disk at backup time', async () => {
    const test = await createTestVm({
      name: 'lb-e2e-running',
      disks: [
        { sizeMiB: 64, format: 'qcow2' },
        { sizeMiB: 16, format: 'qcow2', volatile: true },
      ],
      running: true,
    });
    vms.push(test);
    const writesA: [number, number, number][] = [
      [1 * MiB, 1 * MiB, 0xa1],
      [40 * MiB, 512 * 1024, 0xa2],
    ];
    for (const [offset, length, byte] of writesA) await guestWrite(test.domain, 'vda', offset, length, byte);
    await guestWrite(test.domain, 'vdb', 0, MiB, 0xee);
    const vm = await stack.vm(test.domain, 'RUNNING');
    expect(vm.disks.find((d) => d.target === 'vdb')?.volatile).toBe(true);
    const original = await blockList(test.domain);
    const ds = await createDatastore('e2e-local', 'restic', {
      BASE_PATH: join(scratch, 'restic-local'),
      RESTIC_PASSWORD: 'e2e local restic pw',
    });

    const image = await backupOk(vm, ds, [0]);
    // Written after the backup: must not be in the restore.
    await guestWrite(test.domain, 'vda', 1 * MiB, 64 * 1024, 0xb1);
    // The VM still runs on its own files, with no overlay left in their chain.
    expect(await blockList(test.domain)).toEqual(original);
    expect((await stack.json<Vm>(['vm', 'show', String(vm.id)])).state).toBe('RUNNING');
    expect((await imageInfo(test.disks[0]?.path as string))['backing-filename']).toBeUndefined();

    const { dir } = await restore(image, 'restored-running');
    expect((await readdir(dir)).sort()).toEqual(['restored-running-disk-0.qcow2', 'restored-running.xml']);
    const disk = join(dir, 'restored-running-disk-0.qcow2');
    expect((await imageInfo(disk)).format).toBe('qcow2');
    expect(await guestSha256(disk, 'qcow2')).toBe(expectedSha(64 * MiB, writesA));
    expect([...(await readDisk(disk, 'qcow2', 1 * MiB, 4))]).toEqual([0xa1, 0xa1, 0xa1, 0xa1]);
    const template = await readFile(join(dir, 'restored-running.xml'), 'utf8');
    expect(template).toContain(disk);
    expect(template).not.toContain(test.disks[0]?.path);
  });

  it('a powered-off VM: restic over SFTP and rsync over ssh both restore its exact bytes', async () => {
    const test = await createTestVm({
      name: 'lb-e2e-off',
      disks: [
        { sizeMiB: 48, format: 'qcow2' },
        { sizeMiB: 16, format: 'raw' },
      ],
      running: false,
    });
    vms.push(test);
    const [vda, vdb] = test.disks as [TestVm['disks'][number], TestVm['disks'][number]];
    // A powered-off guest's disks are written offline.
    await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0xc1 2M 3M', vda.path] });
    await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', 'write -P 0xc2 8M 1M', vdb.path] });
    const atBackup = [await guestSha256(vda.path, 'qcow2'), await guestSha256(vdb.path, 'raw')];
    const vm = await stack.vm(test.domain, 'POWEROFF');

    const sftp = await createDatastore('e2e-sftp', 'restic', {
      BASE_PATH: join(scratch, 'restic-sftp'),
      RESTIC_SFTP_SERVER: `${sshd.host}:${sshd.port}`,
      RESTIC_PASSWORD: 'e2e sftp restic pw',
    });
    const rsync = await createDatastore('e2e-rsync', 'rsync', {
      BASE_PATH: join(scratch, 'rsync'),
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
    });
    const images = [await backupOk(vm, sftp, [0, 1]), await backupOk(vm, rsync, [0, 1])];
    // Changed after the backups.
    await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0xd1 2M 1M', vda.path] });
    expect(await blockList(test.domain, true)).toEqual({ vda: vda.path, vdb: vdb.path });
    expect((await stack.json<Vm>(['vm', 'show', String(vm.id)])).state).toBe('POWEROFF');
    // The data is really on the servers' side.
    expect(await readdir(join(scratch, 'restic-sftp'))).not.toEqual([]);
    expect(await readdir(join(scratch, 'rsync'))).not.toEqual([]);

    for (const [i, image] of images.entries()) {
      const name = `restored-off-${i}`;
      const { dir } = await restore(image, name);
      for (const [id, sha] of atBackup.entries()) {
        expect(await guestSha256(join(dir, `${name}-disk-${id}.qcow2`), 'qcow2')).toBe(sha);
      }
      expect(await readFile(join(dir, `${name}.xml`), 'utf8')).toContain(`${name}-disk-1.qcow2`);
    }
  });

  it("a backup job: both VMs go into the job's one restic repository and each restores exactly", async () => {
    const tests = await Promise.all(
      ['lb-e2e-job-a', 'lb-e2e-job-b'].map((name) =>
        createTestVm({ name, disks: [{ sizeMiB: 16, format: 'qcow2' }], running: true }),
      ),
    );
    vms.push(...tests);
    const writes: [number, number, number][][] = [[[MiB, MiB, 0x5a]], [[4 * MiB, 2 * MiB, 0x5b]]];
    for (const [i, test] of tests.entries()) {
      for (const [offset, length, byte] of writes[i] ?? [])
        await guestWrite(test.domain, 'vda', offset, length, byte);
    }
    const jobVms = await Promise.all(tests.map((t) => stack.vm(t.domain, 'RUNNING')));
    const base = join(scratch, 'restic-job');
    const ds = await createDatastore('e2e-job', 'restic', {
      BASE_PATH: base,
      RESTIC_PASSWORD: 'e2e job restic pw',
    });
    const job = await stack.json<{ id: number }>([
      'backupjob',
      'create',
      '--name',
      'e2e-job',
      '--vms',
      jobVms.map((v) => v.id).join(','),
      '-d',
      String(ds.id),
      '--execution',
      'parallel',
      'KEEP_LAST=2',
    ]);
    const done = await stack.json<{ updatedVms: number[]; errorVms: number[] }>([
      'backupjob',
      'backup',
      String(job.id),
      '--wait',
    ]);
    // A parallel job lists its VMs in the order their backups ended.
    expect({ updated: [...done.updatedVms].sort((a, b) => a - b), errors: done.errorVms }).toEqual({
      updated: jobVms.map((v) => v.id).sort((a, b) => a - b),
      errors: [],
    });
    // One repository for the job, none per VM.
    expect(await readdir(base)).toEqual([`job-${job.id}`]);
    for (const [i, vm] of jobVms.entries()) {
      const ids = (await stack.json<Vm>(['vm', 'show', String(vm.id)])).backups.BACKUP_IDS;
      expect(ids).toHaveLength(1);
      const image = await stack.json<Image>(['image', 'show', String(ids[0])]);
      expect(image).toMatchObject({ state: 'READY', vmId: vm.id, jobId: job.id });
      const { dir } = await restore(image, `restored-job-${i}`);
      expect(await guestSha256(join(dir, `restored-job-${i}-disk-0.qcow2`), 'qcow2')).toBe(
        expectedSha(16 * MiB, writes[i] ?? []),
      );
    }
  }, 180_000);
});
