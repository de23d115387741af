/**
 * Datastore capacity with the real runner, on a small loop-mounted ext4 as BASE_PATH: `datastore
 * monitor --wait` of a restic and an rsync (sftp) datastore reports the filesystem `statfs` sees
 * and the bytes of the datastore's repositories only; `datastore list` shows the figures; and a
 * backup larger than FREE is refused before it is queued, with the numbers.
 */
import { lstat, mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { formatBytes } from '../../cli/output.ts';
import { createTestVm, type TestVm } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import { removeHome, type Stack, startStack, until } from './harness.ts';

const MiB = 1024 * 1024;
let scratch: string;
let mnt: string;
let mounted = false;
let stack: Stack;
let sshd: Sshd;
let test: TestVm;
let vm: Vm;

/** Writes `bytes` of data (incompressible, so every block is allocated) at `path`. */
async function fill(path: string, bytes: number): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, Buffer.alloc(bytes, 0x5a));
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-h14-capacity-'));
  mnt = join(scratch, 'mnt');
  await mkdir(mnt);
  await run({ file: 'truncate', args: ['-s', '64M', join(scratch, 'fs.img')] });
  await run({ file: 'mkfs.ext4', args: ['-q', '-F', join(scratch, 'fs.img')] });
  await run({ file: 'mount', args: ['-o', 'loop', join(scratch, 'fs.img'), mnt] });
  mounted = true;
  // What the datastores hold besides their repositories must not count as theirs.
  await fill(join(mnt, 'restic', '7', 'data', 'aa', 'pack'), MiB);
  await fill(join(mnt, 'restic', 'job-3', 'config'), 4096);
  await fill(join(mnt, 'restic', 'stray', 'big'), 2 * MiB);
  await fill(join(mnt, 'rsync', '9', 'abc', 'disk.0.raw'), MiB);
  await fill(join(mnt, 'rsync', 'stray.img'), 2 * MiB);
  sshd = await startSshd();
  [stack, test] = await Promise.all([
    startStack({ sshd }),
    createTestVm({ name: 'lb-h14-capacity', disks: [{ sizeMiB: 128, format: 'qcow2' }], running: false }),
  ]);
  // 80 MiB of data: more than the 64 MiB filesystem can take.
  await run({
    file: 'qemu-io',
    args: ['-f', 'qcow2', '-c', 'write -P 0x5a 0 80M', test.disks[0]?.path as string],
  });
  await stack.host();
  vm = await until('the VM with its allocation in the inventory', async () => {
    const found = await stack.vm(test.domain);
    return (found.disks[0]?.allocated ?? 0) > 80 * MiB ? found : undefined;
  });
}, 180_000);

afterAll(async () => {
  await test?.destroy().catch(() => {});
  await stack?.stop();
  if (stack) await removeHome(stack);
  await sshd?.stop();
  if (mounted) await run({ file: 'umount', args: [mnt] }).catch(() => {});
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

async function datastore(name: string, driver: string, attrs: Record<string, string>): Promise<Datastore> {
  const args = Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]);
  return stack.json<Datastore>(['datastore', 'create', '--name', name, '--driver', driver, ...args]);
}

/** Allocated bytes of files, as `du` counts them. */
async function allocated(...paths: string[]): Promise<number> {
  let sum = 0;
  for (const path of paths) sum += (await lstat(path)).blocks * 512;
  return sum;
}

describe('datastore capacity on a 64 MiB filesystem', () => {
  let restic: Datastore;
  let rsync: Datastore;

  it('monitor --wait measures the filesystem as statfs does, and USED over the repositories only', async () => {
    restic = await datastore('cap-restic', 'restic', {
      BASE_PATH: join(mnt, 'restic'),
      RESTIC_PASSWORD: 'capacity pw',
    });
    rsync = await datastore('cap-rsync', 'rsync', {
      BASE_PATH: join(mnt, 'rsync'),
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
      RSYNC_USER: 'root',
    });
    const [r, s] = await Promise.all([
      stack.json<Datastore>(['datastore', 'monitor', String(restic.id), '--wait']),
      stack.json<Datastore>(['datastore', 'monitor', String(rsync.id), '--wait']),
    ]);
    const fs = await statfs(mnt);
    for (const measured of [r, s]) {
      expect(measured.totalBytes).toBe(fs.blocks * fs.bsize);
      // Nothing writes there meanwhile: FREE is what df says, to the KiB sftp reports in.
      expect(Math.abs((measured.freeBytes as number) - fs.bavail * fs.bsize)).toBeLessThan(64 * 1024);
      expect(measured.totalBytes as number).toBeLessThanOrEqual(64 * MiB);
      expect(Date.parse(measured.monitoredAt as string)).toBeGreaterThan(Date.now() - 120_000);
    }
    // restic: allocated blocks of <vmid>/ and job-<id>/, not `stray/`.
    expect(r.usedBytes).toBe(
      await allocated(join(mnt, 'restic', '7', 'data', 'aa', 'pack'), join(mnt, 'restic', 'job-3', 'config')),
    );
    // rsync: the file sizes rsync lists under <vmid>/, not `stray.img`.
    expect(s.usedBytes).toBe(MiB);
  }, 90_000);

  it('datastore list shows TOTAL, FREE and USED', async () => {
    const out = await stack.cli(['datastore', 'list']);
    expect(out.code, out.stderr).toBe(0);
    const row = out.stdout.split('\n').find((line) => line.includes('cap-restic')) ?? '';
    const shown = await stack.json<Datastore>(['datastore', 'show', String(restic.id)]);
    for (const figure of [shown.totalBytes, shown.freeBytes, shown.usedBytes]) {
      expect(row).toContain(formatBytes(figure as number));
    }
    expect(row).toMatch(/^\s*\d+\s+cap-restic\s+restic\s+\d+\.\d MiB\s+\d+\.\d MiB\s+1\.0 MiB\s*$/);
  });

  it('a backup larger than FREE is refused before it is queued, with the numbers', async () => {
    const backups = async () =>
      (await stack.api<{ items: Execution[] }>('GET', '/executions')).items.filter(
        (e) => e.kind === 'backup',
      );
    const before = (await backups()).length;
    const out = await stack.cli(['vm', 'backup', String(vm.id), '-d', String(restic.id)]);
    // A 409 is bad input to the CLI (exit 2), said in one line.
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr.trim()).toMatch(
      new RegExp(
        `^lifeboat: datastore ${restic.id} has \\d\\d MiB free \\(measured [^)]+\\); the FULL backup of VM ${vm.id} \\(disks 0\\) needs about 8\\d MiB`,
      ),
    );
    expect(await backups()).toHaveLength(before);
    await expect(lstat(join(mnt, 'restic', String(vm.id)))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
