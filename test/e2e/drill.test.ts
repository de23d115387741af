/**
 * Restore drills with the real runner and a real libvirt VM: `image verify --restore --wait`
 * restores an rsync backup into the runner's scratch space, checks every disk's sha256, starts
 * the VM under a throwaway name without NICs and removes it all (drill OK with points and bytes,
 * shown by `drill list` and `drill show`); after a byte of the stored disk is flipped on the
 * server, a drill FAILS naming the disk, and still leaves no domain and no file behind. A chain
 * of a running VM (restic) is drilled from every point, or with --latest-only from the last.
 */
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Drill, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, guestWrite, type TestVm, virsh } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import { backup, removeHome, type Stack, startStack } from './harness.ts';

let stack: Stack;
let sshd: Sshd;
let scratch: string;
let test: TestVm;
let chainTest: TestVm | undefined;
let vm: Vm;
let ds: Datastore;
let image: Image;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-h-drill-'));
  sshd = await startSshd();
  stack = await startStack({ sshd });
  await stack.host();
  test = await createTestVm({
    name: 'lb-e2e-h-drill',
    disks: [{ sizeMiB: 32, format: 'qcow2' }],
    running: false,
  });
  await run({
    file: 'qemu-io',
    args: ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 2M', test.disks[0]?.path as string],
  });
  vm = await stack.vm(test.domain, 'POWEROFF');
  ds = await stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    'h-drill-rsync',
    '--driver',
    'rsync',
    '--attr',
    `BASE_PATH=${join(scratch, 'rsync')}`,
    '--attr',
    `RSYNC_HOST=${sshd.host}:${sshd.port}`,
  ]);
  const out = await backup(stack, vm.id, ds.id);
  expect(out.code, out.stderr).toBe(0);
  image = await stack.json<Image>(['image', 'show', String(out.execution?.imageId)]);
}, 240_000);

afterAll(async () => {
  await test?.destroy().catch(() => {});
  await chainTest?.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

/** Domains named like a drill's, on this libvirt. */
async function drillDomains(): Promise<string[]> {
  const names = (await virsh('list', '--all', '--name')).split('\n').map((n) => n.trim());
  return names.filter((n) => n.startsWith('lifeboat-drill-'));
}

/** Every file left under the runner's work folders. */
async function leftoverFiles(): Promise<string[]> {
  const entries = await readdir(join(stack.runnerDir, 'work'), {
    recursive: true,
    withFileTypes: true,
  }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** `image verify IMAGEID --restore --wait --json`. */
async function drill(
  imageId = image.id,
  extra: string[] = [],
): Promise<{ code: number; stderr: string; out?: { drill: Drill; image: Image } }> {
  const res = await stack.cli(
    ['image', 'verify', String(imageId), '--restore', ...extra, '--wait', '--json'],
    300_000,
  );
  let out: { drill: Drill; image: Image } | undefined;
  try {
    out = JSON.parse(res.stdout);
  } catch {
    out = undefined;
  }
  return { code: res.code, stderr: res.stderr, out };
}

describe('restore drills through the real runner', () => {
  it('a drill of a good backup is OK (points, bytes), listed and shown, and leaves nothing behind', async () => {
    const before = Date.now();
    const res = await drill();
    expect(res.code, res.stderr).toBe(0);
    const report = res.out?.drill as Drill;
    expect(report).toMatchObject({
      imageId: image.id,
      vmId: vm.id,
      datastoreId: ds.id,
      result: 'OK',
      points: 1,
      requestedBy: 'admin',
    });
    // The stored qcow2 holds the 2 MiB the guest wrote: every byte of it read back and hashed.
    expect(report.bytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(report.seconds).toBeGreaterThanOrEqual(0);
    expect(report).not.toHaveProperty('error');
    expect(res.out?.image).toMatchObject({ verifyState: 'OK' });
    expect(Date.parse(res.out?.image.verifiedAt ?? '')).toBeGreaterThanOrEqual(before - 1000);

    const listed = await stack.json<Drill[]>(['drill', 'list']);
    expect(listed.map((d) => d.id)).toContain(report.id);
    expect(await stack.json<Drill>(['drill', 'show', String(report.id)])).toEqual(report);
    const shown = await stack.cli(['drill', 'show', String(report.id)]);
    expect(shown.stdout).toMatch(/RESULT:\s+OK/);

    expect(await drillDomains()).toEqual([]);
    expect(await leftoverFiles()).toEqual([]);
    // The drill's domain never reached the inventory: no VM of that name.
    const vms = await stack.json<Vm[]>(['vm', 'list']);
    expect(vms.filter((v) => v.domain.startsWith('lifeboat-drill-'))).toEqual([]);
  });

  it('a flipped byte in the stored disk: the drill FAILS naming the disk, the image FAILED, nothing left', async () => {
    await flipByte(join(scratch, 'rsync', String(vm.id), image.source, 'disk.0.qcow2'), 1000);
    const res = await drill();
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/BackupVerifyFailed: .*disk 0: disk\.0\.qcow2/);
    const report = res.out?.drill as Drill;
    expect(report).toMatchObject({ imageId: image.id, result: 'FAILED' });
    expect(report.error).toMatch(
      /disk 0: disk\.0\.qcow2 of backup .* restored with sha256 [0-9a-f]{64}, not the/,
    );
    expect(res.out?.image).toMatchObject({ verifyState: 'FAILED' });
    expect(await stack.json<Drill>(['drill', 'show', String(report.id)])).toMatchObject({ result: 'FAILED' });
    expect(await drillDomains()).toEqual([]);
    expect(await leftoverFiles()).toEqual([]);
  });

  it('a chain of a running VM: every point started (points 2), or only the latest with --latest-only', async () => {
    chainTest = await createTestVm({
      name: 'lb-e2e-h-drill-chain',
      disks: [{ sizeMiB: 32, format: 'qcow2' }],
      running: true,
      backupConfig: { MODE: 'INCREMENT' },
    });
    const chainVm = await stack.vm(chainTest.domain, 'RUNNING');
    const restic = await stack.json<Datastore>([
      'datastore',
      'create',
      '--name',
      'h-drill-restic',
      '--driver',
      'restic',
      '--attr',
      `BASE_PATH=${join(scratch, 'restic')}`,
      '--attr',
      'RESTIC_PASSWORD=h-drill restic pw',
    ]);
    const first = await backup(stack, chainVm.id, restic.id);
    expect(first.code, first.stderr).toBe(0);
    await guestWrite(chainTest.domain, 'vda', 4 * 1024 * 1024, 1024 * 1024, 0x3c);
    const second = await backup(stack, chainVm.id, restic.id);
    expect(second.code, second.stderr).toBe(0);
    const chain = await stack.json<Image>(['image', 'show', String(second.execution?.imageId)]);
    expect(chain.increments).toHaveLength(2);

    const every = await drill(chain.id);
    expect(every.code, every.stderr).toBe(0);
    expect(every.out?.drill).toMatchObject({ result: 'OK', points: 2, latestOnly: false });
    const latest = await drill(chain.id, ['--latest-only']);
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.out?.drill).toMatchObject({ result: 'OK', points: 1, latestOnly: true });
    expect(await drillDomains()).toEqual([]);
    expect(await leftoverFiles()).toEqual([]);
  });
});

/** Flips the bits of the byte at `offset` of `path`, in place. */
async function flipByte(path: string, offset: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    await handle.write(Buffer.from([(byte[0] as number) ^ 0xff]), 0, 1, offset);
  } finally {
    await handle.close();
  }
}
