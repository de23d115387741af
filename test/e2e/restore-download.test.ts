/**
 * Download by URL for every driver and every restore point, through local mode with the real
 * runner: each URL an image lists (the FULL's files and each increment's) is written with
 * `image download URL --to PATH`, its execution reports the bytes written, and the files give
 * back the guest's bytes at each point (an increment rebased onto its FULL). Bad URLs are
 * refused with one clear line and no execution.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, guestWrite, type TestVm } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import { backup, guestSha256, removeHome, type Stack, startStack } from './harness.ts';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
let stack: Stack;
let sshd: Sshd;
let scratch: string;
let test: TestVm;
const model = Buffer.alloc(SIZE);

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-dl-'));
  sshd = await startSshd();
  stack = await startStack({ sshd });
  await stack.host();
  test = await createTestVm({
    name: 'lb-e2e-dl',
    disks: [{ sizeMiB: SIZE / MiB, format: 'qcow2' }],
    running: true,
    backupConfig: { MODE: 'INCREMENT' },
  });
}, 180_000);

afterAll(async () => {
  await test?.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

async function write(offset: number, length: number, byte: number): Promise<void> {
  await guestWrite(test.domain, 'vda', offset, length, byte);
  model.fill(byte, offset, offset + length);
}

const sha = (buffer: Buffer) => createHash('sha256').update(buffer).digest('hex');

/** `image download URL --to PATH --json`: the finished execution. */
async function download(url: string, to: string): Promise<Execution> {
  const out = await stack.cli(['image', 'download', url, '--to', to, '--json']);
  expect(out.code, out.stderr).toBe(0);
  return JSON.parse(out.stdout) as Execution;
}

/** A FULL and one increment into `ds`; the image and the guest's sha at each point. */
async function chain(
  ds: Datastore,
): Promise<{ image: Image & { downloadUrls: string[] }; points: string[] }> {
  const vm = await stack.vm(test.domain, 'RUNNING');
  const points: string[] = [];
  await write(2 * MiB, MiB, 0x31 + ds.id);
  expect((await backup(stack, vm.id, ds.id)).execution).toMatchObject({ state: 'SUCCEEDED' });
  points.push(sha(model));
  await write(20 * MiB, 512 * 1024, 0x41 + ds.id);
  const out = await backup(stack, vm.id, ds.id);
  expect(out.execution).toMatchObject({ state: 'SUCCEEDED' });
  points.push(sha(model));
  const image = await stack.json<Image & { downloadUrls: string[] }>([
    'image',
    'show',
    String(out.execution?.imageId),
  ]);
  expect(image.increments.map((i) => i.type)).toEqual(['FULL', 'INCREMENT']);
  return { image, points };
}

/** Downloads every URL of the image and checks each point's disk against the guest's bytes. */
async function downloadsEveryPoint(ds: Datastore, prefix: string): Promise<void> {
  const { image, points } = await chain(ds);
  const full = image.increments[0]?.source as string;
  const inc = image.increments[1]?.source as string;
  // Four URLs: the FULL's disk and vm.xml, the increment's disk and vm.xml.
  expect(image.downloadUrls).toHaveLength(4);
  expect(image.downloadUrls.every((u) => u.startsWith(`${prefix}${ds.id}/`))).toBe(true);
  const files = new Map<string, string>();
  for (const url of image.downloadUrls) {
    const name = url.split('/').slice(-2).join('-');
    const to = join(scratch, `${ds.driver}-${name}`);
    const execution = await download(url, to);
    expect(execution).toMatchObject({ kind: 'download', state: 'SUCCEEDED' });
    // Progress: the execution reports the bytes it wrote.
    expect(execution.bytesDone).toBe((await stat(to)).size);
    files.set(url, to);
  }
  const of = (source: string, test: (f: string) => boolean) =>
    [...files.entries()].find(([url]) => url.includes(`/${source}/`) && test(url))?.[1] as string;
  expect(
    await readFile(
      of(full, (u) => u.endsWith('/vm.xml')),
      'utf8',
    ),
  ).toContain('<name>lb-e2e-dl</name>');
  const fullDisk = of(full, (u) => /\/disk\.0\.(raw|qcow2)$/.test(u));
  const fullFormat = fullDisk.endsWith('.raw') ? 'raw' : 'qcow2';
  expect(await guestSha256(fullDisk, fullFormat)).toBe(points[0]);
  // The increment holds the changed blocks only: on top of its FULL it is the disk at that point.
  const incDisk = of(inc, (u) => /\/disk\.0\.inc1\.qcow2$/.test(u));
  expect((await stat(incDisk)).size).toBeLessThan(SIZE / 4);
  await run({ file: 'qemu-img', args: ['rebase', '-u', '-F', fullFormat, '-b', fullDisk, incDisk] });
  expect(await guestSha256(incDisk, 'qcow2')).toBe(points[1]);
}

describe('download by URL', () => {
  it('restic: every file of every restore point, byte for byte', async () => {
    const ds = await stack.json<Datastore>([
      'datastore',
      'create',
      '--name',
      'dl-restic',
      '--driver',
      'restic',
      '--attr',
      `BASE_PATH=${join(scratch, 'restic')}`,
      '--attr',
      'RESTIC_PASSWORD=e2e download pw',
    ]);
    await downloadsEveryPoint(ds, 'restic://');
  }, 300_000);

  it('rsync: every file of every restore point, byte for byte', async () => {
    const ds = await stack.json<Datastore>([
      'datastore',
      'create',
      '--name',
      'dl-rsync',
      '--driver',
      'rsync',
      '--attr',
      `BASE_PATH=${join(scratch, 'rsync')}`,
      '--attr',
      `RSYNC_HOST=${sshd.host}:${sshd.port}`,
    ]);
    await downloadsEveryPoint(ds, 'rsync://');
  }, 300_000);

  it.each([
    ['restic://1/../etc/passwd', /must not contain "\.\."/],
    ['s3://1/abc/disk.0.raw', /unknown scheme "s3": use restic:\/\/ or rsync:\/\//],
    ['restic://999/abc/disk.0.raw', /Datastore 999 does not exist/],
    ['restic://1/abc/sub/disk.0.raw', /the file must be a plain name without "\/"/],
    ['restic://1/no-such-backup/disk.0.raw', /Datastore 1 has no backup no-such-backup/],
  ])('%s is refused with one line (exit 2) and queues nothing', async (url, message) => {
    const before = (await stack.api<{ items: Execution[] }>('GET', '/executions')).items.length;
    const out = await stack.cli(['image', 'download', url, '--to', join(scratch, 'refused')]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(message);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect((await stack.api<{ items: Execution[] }>('GET', '/executions')).items.length).toBe(before);
  });

  it('a file a restore point does not hold is refused, naming the files it has', async () => {
    const { items } = await stack.api<{ items: (Image & { downloadUrls: string[] })[] }>('GET', '/images');
    const url = items.find((i) => i.downloadUrls.length > 0)?.downloadUrls[0] as string;
    const wrong = url.replace(/[^/]+$/, 'disk.7.raw');
    const out = await stack.cli(['image', 'download', wrong, '--to', join(scratch, 'refused')]);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/has no file disk\.7\.raw \(files: disk\.0\.\S+, vm\.xml\)/);
  });
});
