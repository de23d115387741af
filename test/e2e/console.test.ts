/**
 * The web console end to end, in Debian's chromium (playwright-core) against local mode with its
 * real runner and a real libvirt VM: the admin signs in with the stack's token, sets the VM's
 * BACKUP_CONFIG, backs it up now and watches the execution reach SUCCEEDED on the Executions
 * page, sees the restore point on the VM's timeline, restores it with the wizard to a folder with
 * NO_IP (a restored disk holds the VM's bytes), creates a backup job with the VM and runs it to
 * SUCCEEDED; a non-admin user signed in does not see the admin's VM. The console cannot create
 * datastores (its Datastores page lists them), so the restic datastore is made with the CLI.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupJob, Datastore, Execution, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { buildConsole } from '../../scripts/build-console.ts';
import { createTestVm, removeTestVm } from '../helpers/libvirt.ts';
import { removeHome, type Stack, startStack, until } from './harness.ts';

const NAME = 'lb-e2e-h-axe-console';
const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts', 'console-e2e');

let stack: Stack;
let scratch: string;
let browser: Browser;
let vm: Vm;
let ds: Datastore;
/** sha256 of the VM's disk as the guest sees it (raw bytes). */
let sha: string;

/** sha256 (node:crypto) of a disk image's guest-visible bytes: converted to raw, then hashed. */
async function rawSha256(path: string, format: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-h-axe-sha-'));
  try {
    const raw = join(dir, 'disk.raw');
    await run({ file: 'qemu-img', args: ['convert', '-U', '-f', format, '-O', 'raw', path, raw] });
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(raw)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `qemu-img info`'s format of a file. */
async function formatOf(path: string): Promise<string> {
  const info = await run({ file: 'qemu-img', args: ['info', '-U', '--output=json', path] });
  return (JSON.parse(info.stdout) as { format: string }).format;
}

/** A fresh browser tab at 1280 px on the console, signed in with `token`. */
async function signedIn(token: string): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${stack.endpoint}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  return page;
}

/** Pick `option` in the Cloudscape select (in `scope`) whose trigger's name matches `trigger`. */
async function choose(
  page: Page,
  trigger: RegExp,
  option: RegExp,
  scope: Page | Locator = page,
): Promise<void> {
  await scope.getByRole('button', { name: trigger }).first().click();
  await page.getByRole('option', { name: option }).first().click();
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-h-axe-console-'));
  await mkdir(join(scratch, 'restores'));
  const [, source] = await Promise.all([
    buildConsole(),
    createTestVm({ name: NAME, disks: [{ sizeMiB: 16, format: 'qcow2' }], running: false }),
  ]);
  const disk = source.disks[0]?.path as string;
  await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0x7a 1M 2M', disk] });
  sha = await rawSha256(disk, 'qcow2');
  stack = await startStack({ env: { LIFEBOAT_RESTORE_ROOTS: join(scratch, 'restores') } });
  vm = await stack.vm(NAME, 'POWEROFF');
  ds = await stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    'h-axe-restic',
    '--driver',
    'restic',
    '--attr',
    `BASE_PATH=${join(scratch, 'restic')}`,
    '--attr',
    'RESTIC_PASSWORD=h-axe console pw',
  ]);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  await mkdir(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await removeTestVm(NAME).catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 60_000);

describe('the web console on local mode with a real VM', () => {
  it('sets BACKUP_CONFIG, backs up, sees the point, restores it with NO_IP, runs a job; another user sees nothing', async () => {
    const page = await signedIn(stack.token);
    await page.getByRole('button', { name: /^admin/ }).waitFor();

    // BACKUP_CONFIG on the VM page, stored as the API's.
    await page.goto(`${stack.endpoint}/#/vms/${vm.id}`);
    await page.getByRole('heading', { name: `VM ${vm.id}: ${vm.name}` }).waitFor();
    await page.getByRole('textbox', { name: /KEEP_LAST/ }).fill('3');
    await page.getByRole('button', { name: 'Save backup config' }).click();
    await page.getByText('Saved', { exact: true }).waitFor();
    const config = await stack.api<{ config: Record<string, string> }>('GET', `/vms/${vm.id}/backup-config`);
    expect(config.config).toMatchObject({ KEEP_LAST: '3' });

    // Back up now to the restic datastore; the Executions page shows it reach SUCCEEDED.
    await page.getByRole('button', { name: 'Back up now' }).click();
    await choose(page, /^Datastore/, new RegExp(`^${ds.name}`));
    await page.getByRole('button', { name: 'Start backup' }).click();
    const queued = page.getByText('Backup queued').locator('..').locator('..');
    await queued.waitFor();
    const backupId = ((await queued.getByRole('link').textContent()) ?? '').trim();
    await page.getByRole('link', { name: 'Executions' }).first().click();
    await page
      .getByRole('row', { name: new RegExp(`^${backupId} backup `) })
      .filter({ hasText: 'SUCCEEDED' })
      .waitFor({ timeout: 60_000 });
    const backup = await stack.api<Execution>('GET', `/executions/${backupId}`);
    expect(backup).toMatchObject({ kind: 'backup', state: 'SUCCEEDED', vmId: vm.id, datastoreId: ds.id });
    await page.screenshot({ path: join(ARTIFACTS, 'executions-1280.png'), fullPage: true });

    // The restore point on the VM page's timeline.
    const image = await stack.api<Image>('GET', `/images/${backup.imageId}`);
    expect(image).toMatchObject({ state: 'READY', vmId: vm.id, mode: 'FULL' });
    await page.goto(`${stack.endpoint}/#/vms/${vm.id}`);
    const chain = page.getByRole('list', { name: `Restore points of image ${image.id}` });
    await chain.waitFor();
    expect(await chain.getByRole('listitem').first().getAttribute('aria-label')).toMatch(
      new RegExp(`^Image ${image.id} point 0: FULL, `),
    );
    await page.screenshot({ path: join(ARTIFACTS, 'vm-1280.png'), fullPage: true });

    // The wizard: that point, to a folder under the restore root, without the IP addresses.
    await page.getByRole('button', { name: 'Restore', exact: true }).click();
    const wizard = page.getByRole('dialog');
    await choose(page, /^Backup image/, new RegExp(`^Image ${image.id} `));
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText('A new VM or disk files').click();
    await wizard.getByRole('textbox', { name: 'Name' }).fill('h-axe-copy');
    await wizard.getByRole('textbox', { name: /Folder/ }).fill('h-axe-copy');
    await wizard.getByText('NO_IP: do not keep the IP addresses').click();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText('h-axe-copy').first().waitFor();
    await wizard.getByRole('button', { name: 'Restore', exact: true }).click();
    const restoring = page.getByText('Restore queued').locator('..').locator('..');
    await restoring.waitFor();
    const restoreId = ((await restoring.getByRole('link').textContent()) ?? '').trim();
    const restored = await until(
      `restore ${restoreId} to end`,
      async () => {
        const e = await stack.api<Execution>('GET', `/executions/${restoreId}`);
        return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.state) ? e : undefined;
      },
      60_000,
    );
    expect(restored).toMatchObject({ kind: 'restore', state: 'SUCCEEDED', params: { noIp: true } });
    // A restored disk file in the folder holds the VM's bytes.
    const dir = join(scratch, 'restores', 'h-axe-copy');
    const files = (await readdir(dir)).filter((f) => !f.endsWith('.xml'));
    const shas = await Promise.all(
      files.map(async (f) => rawSha256(join(dir, f), await formatOf(join(dir, f)))),
    );
    expect(shas).toContain(sha);

    // A backup job with the VM, run from the Backup jobs page to UPDATED.
    await page.getByRole('link', { name: 'Backup jobs' }).first().click();
    await page.getByRole('button', { name: 'Create job' }).click();
    const form = page.getByRole('dialog');
    await form.getByRole('textbox', { name: 'Job name' }).fill('h-axe-job');
    await choose(page, /^Datastore/, new RegExp(`^${ds.name}`), form);
    await choose(page, /Add a VM/, new RegExp(`^${vm.name}`));
    await form.getByRole('button', { name: 'Create job' }).click();
    await page.getByRole('row', { name: /h-axe-job/ }).waitFor();
    const [job] = (await stack.api<{ items: BackupJob[] }>('GET', '/jobs')).items;
    expect(job).toMatchObject({ name: 'h-axe-job', vmIds: [vm.id], datastoreId: ds.id });
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByText(/Run started: 1 backups queued/).waitFor();
    const done = await until(
      'the job run to end',
      async () => {
        const j = await stack.api<BackupJob>('GET', `/jobs/${job?.id}`);
        return j.updatedVms?.length || j.errorVms?.length ? j : undefined;
      },
      90_000,
    );
    expect(done).toMatchObject({ updatedVms: [vm.id], errorVms: [] });
    const jobRun = (await stack.api<{ items: Execution[] }>('GET', '/executions')).items.filter(
      (e) => e.kind === 'backup' && e.id !== backupId,
    );
    expect(jobRun.map((e) => e.state)).toEqual(['SUCCEEDED']);
    await page.getByRole('button', { name: 'Refresh backup jobs' }).click();
    await page.getByRole('region', { name: 'UPDATED VMs' }).getByText(vm.name).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'jobs-1280.png'), fullPage: true });
    await page.context().close();

    // A non-admin user: an empty VM list, not the admin's VM.
    const { token } = await stack.json<{ token: string }>(['user', 'create', 'h-axe-bob']);
    const bob = await signedIn(token);
    await bob.getByRole('link', { name: 'VMs' }).first().click();
    await bob.getByText('No VMs').first().waitFor();
    expect(await bob.getByText(vm.name).count()).toBe(0);
    await bob.context().close();
  }, 240_000);
});
