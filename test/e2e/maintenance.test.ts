/**
 * Datastore maintenance with the real runner: KEEP_LAST removes the oldest backup's data from a
 * restic repository, a download URL writes one disk byte-identical, and `image delete` removes
 * an rsync backup's folder on the server.
 */
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, type TestVm } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import { backup, guestSha256, removeHome, type Stack, startStack, until } from './harness.ts';

const PASSWORD = 'e2e maintenance restic pw';
let stack: Stack;
let sshd: Sshd;
let scratch: string;
let test: TestVm;
let vm: Vm;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-maint-'));
  sshd = await startSshd();
  stack = await startStack({ sshd });
  await stack.host();
  test = await createTestVm({
    name: 'lb-e2e-maint',
    disks: [{ sizeMiB: 32, format: 'qcow2' }],
    running: false,
  });
  await run({
    file: 'qemu-io',
    args: ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 2M', test.disks[0]?.path as string],
  });
  vm = await stack.vm(test.domain, 'POWEROFF');
}, 180_000);

afterAll(async () => {
  await test?.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

async function datastore(name: string, driver: string, attrs: Record<string, string>): Promise<Datastore> {
  return stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    name,
    '--driver',
    driver,
    ...Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
  ]);
}

async function backupImage(ds: Datastore): Promise<Image & { downloadUrls: string[] }> {
  const out = await backup(stack, vm.id, ds.id);
  expect(out.code, out.stderr).toBe(0);
  return stack.json<Image & { downloadUrls: string[] }>(['image', 'show', String(out.execution?.imageId)]);
}

/** The `backup:<id>` tags of the snapshots in the VM's restic repository. */
async function resticBackupIds(repo: string): Promise<string[]> {
  const { stdout } = await run(
    {
      file: 'restic',
      args: ['-r', repo, 'snapshots', '--json', '--no-lock'],
      env: { RESTIC_PASSWORD: PASSWORD },
    },
    { timeoutMs: 60_000 },
  );
  const snapshots = JSON.parse(stdout) as { tags?: string[] }[];
  const ids = snapshots.flatMap((s) => s.tags ?? []).filter((t) => t.startsWith('backup:'));
  return [...new Set(ids.map((t) => t.slice('backup:'.length)))].sort();
}

describe('maintenance through the real runner', () => {
  it('KEEP_LAST=1: the older backup leaves BACKUP_IDS and its data leaves the restic repository', async () => {
    const base = join(scratch, 'restic');
    const ds = await datastore('maint-restic', 'restic', { BASE_PATH: base, RESTIC_PASSWORD: PASSWORD });
    expect((await stack.cli(['vm', 'backupconfig', String(vm.id), 'KEEP_LAST=1'])).code).toBe(0);
    const first = await backupImage(ds);
    const second = await backupImage(ds);
    expect((await stack.json<Vm>(['vm', 'show', String(vm.id)])).backups.BACKUP_IDS).toEqual([second.id]);
    // The delete runs after the backup: wait for the record to go.
    await until('the first image removed', async () => {
      const shown = await stack.cli(['image', 'show', String(first.id), '--json']);
      return shown.code === 2 ? true : undefined;
    });
    expect(await resticBackupIds(join(base, String(vm.id)))).toEqual([second.source]);

    // The kept backup downloads byte-identical through its URL.
    const url = second.downloadUrls?.find((u) => u.endsWith('/disk.0.qcow2'));
    expect(url).toBe(`restic://${ds.id}/${second.source}/disk.0.qcow2`);
    const to = join(scratch, 'downloaded.qcow2');
    const download = await stack.cli(['image', 'download', url as string, '--to', to, '--json']);
    expect(download.code, download.stderr).toBe(0);
    expect(JSON.parse(download.stdout)).toMatchObject({ kind: 'download', state: 'SUCCEEDED' });
    expect(await guestSha256(to, 'qcow2')).toBe(await guestSha256(test.disks[0]?.path as string, 'qcow2'));
    expect((await stack.cli(['vm', 'backupconfig', String(vm.id), 'KEEP_LAST='])).code).toBe(0);
  });

  it('image delete --wait removes an rsync backup folder on the server, then the record', async () => {
    const base = join(scratch, 'rsync');
    const ds = await datastore('maint-rsync', 'rsync', {
      BASE_PATH: base,
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
    });
    const image = await backupImage(ds);
    const folder = join(base, String(vm.id), image.source);
    await access(join(folder, '.complete'));
    const deleted = await stack.cli(['image', 'delete', String(image.id), '--wait', '--json']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout) as Execution).toMatchObject({ kind: 'delete', state: 'SUCCEEDED' });
    expect(await readdir(join(base, String(vm.id)))).not.toContain(image.source);
    const shown = await stack.cli(['image', 'show', String(image.id)]);
    expect(shown.code).toBe(2);
    expect(shown.stderr).toMatch(/does not exist/);
  });
});
