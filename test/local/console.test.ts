/**
 * The web console in a real browser (Debian's chromium driven by playwright-core), served by the
 * local gateway in front of the real Api function and authorizer on DynamoDB Local: a user signs
 * in with a real API token, sees their name and group (GET /me; the admin's too, whose token is on
 * its user record), the dashboard, their VM (state, host, BACKUP_CONFIG, last backup), image,
 * datastore (capacity) and host, but not the admin's VM and datastore, and signs out; backs the
 * VM up from its page (a second try shows the API's refusal) and cancels the execution from its
 * page; lists the restore drills of the images they may use; a wrong token shows the API's
 * refusal and no data. The token never appears in a URL, lives in sessionStorage only, and
 * nothing is fetched from another origin. Screenshots (1280, 1920 and 375 px) go to
 * test/artifacts/console/ (not committed); axe-core checks each page at each width (WCAG 2 A/AA,
 * no serious or critical violation).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import type { Context } from 'aws-lambda';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadUrlsOf } from '#core/downloader-url.ts';
import type { Image } from '#core/model.ts';
import { handler as authorizer } from '#functions/api/authorizer.ts';
import { handler } from '#functions/api/handler.ts';
import { ROUTES } from '#functions/api/routes.ts';
import { capacitySample, writeCapacitySample } from '#functions/repo/capacity.ts';
import { datastores } from '#functions/repo/datastores.ts';
import { drills } from '#functions/repo/drills.ts';
import { executions } from '#functions/repo/executions.ts';
import { hosts } from '#functions/repo/hosts.ts';
import { images } from '#functions/repo/images.ts';
import { jobs } from '#functions/repo/jobs.ts';
import { vms } from '#functions/repo/vms.ts';
import { startGateway } from '#local/gateway.ts';
import { buildConsole, WEB_DIR } from '../../scripts/build-console.ts';
import { seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';

const ADMIN = 'lb_admin-console-test-0123456789abcdef';
const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts', 'console');
const GIB = 1024 ** 3;
let db: DynamoDbLocal;
let gateway: { endpoint: string; stop(): Promise<void> };
let browser: Browser;
let alice: string;

/** A VM record as the inventory would store it. */
function vm(id: number, name: string, owner: string, group: string, config: Record<string, string>) {
  return {
    id,
    name,
    owner,
    group,
    // The owner may back it up (a: admin right on the VM, as `lifeboat vm backup` needs).
    permissions: 'uma------',
    hostId: 3,
    domain: name,
    state: 'RUNNING' as const,
    disks: [
      { id: 0, target: 'vda', source: `/images/${name}.qcow2`, format: 'qcow2' as const, size: 8 << 20 },
    ],
    nics: [],
    backups: { BACKUP_CONFIG: config, BACKUP_IDS: [] },
    createdAt: new Date().toISOString(),
  };
}

/** A restic datastore measured at `usedGiB` of `totalGiB`. */
function datastore(
  id: number,
  name: string,
  owner: string,
  group: string,
  usedGiB: number,
  totalGiB: number,
) {
  return {
    id,
    name,
    owner,
    group,
    permissions: 'um-------',
    type: 'BACKUP' as const,
    driver: 'restic' as const,
    attributes: { RESTIC_REPOSITORY: `/tmp/${name}` },
    secretAttributes: [],
    totalBytes: totalGiB * GIB,
    usedBytes: usedGiB * GIB,
    freeBytes: (totalGiB - usedGiB) * GIB,
    monitoredAt: new Date().toISOString(),
    createdAt: new Date().toISOString(),
  };
}

/** A READY backup image of VM `vmId` (VM 1 and datastore 100 are alice's, VM 2 and 101 the admin's). */
function image(id: number, vmId: 1 | 2, mode: 'FULL' | 'INCREMENT', more: Partial<Image> = {}) {
  const [owner, group, datastoreId] = vmId === 1 ? ['alice', 'users', 100] : ['admin', 'admin', 101];
  return {
    id,
    name: `${vmId}-${id}`,
    owner,
    group,
    permissions: 'um-------',
    type: 'BACKUP' as const,
    datastoreId,
    vmId,
    state: 'READY' as const,
    mode,
    size: 1024,
    createdAt: '2026-01-04T00:00:00.000Z',
    ...more,
  };
}

let secretsDir: string;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  // Datastore secrets (the create form's password) in local mode's store, in a scratch folder.
  secretsDir = await mkdtemp(join(tmpdir(), 'lifeboat-console-secrets-'));
  process.env.LIFEBOAT_SECRET_STORE = `local:${secretsDir}`;
  const [build, database] = await Promise.all([buildConsole(), startDynamoDbLocal()]);
  console.info(`console build: ${build.built ? `built in ${build.ms} ms` : 'up to date'}`);
  db = database;
  await seedUser('admin', ADMIN, 'admin', 'admin');
  const context = { awsRequestId: 'local', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
  gateway = await startGateway({
    port: 0,
    routes: ROUTES,
    authorizer,
    handler: (event) => handler(event, context),
    webRoot: WEB_DIR,
  });
  const made = await fetch(`${gateway.endpoint}/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'alice' }),
  });
  expect(made.status).toBe(201);
  alice = ((await made.json()) as { token: string }).token;
  const now = new Date().toISOString();
  await hosts.put({
    id: 3,
    name: 'hv-console',
    state: 'MONITORED',
    runnerVersion: '1.2.3',
    lastHeartbeat: now,
    maxBackupsHost: 4,
    createdAt: now,
  });
  await vms.put(vm(1, 'alice-web', 'alice', 'users', { MODE: 'INCREMENT', KEEP_LAST: '3' }));
  await vms.put(vm(2, 'admin-secret-vm', 'admin', 'admin', {}));
  await datastores.put(datastore(100, 'alice-restic', 'alice', 'users', 30, 100));
  await datastores.put(datastore(101, 'admin-only-ds', 'admin', 'admin', 1, 2));
  // Three measurements of alice's datastore, a day apart, in the 30 days the page charts.
  for (const [day, used] of [
    [1, 10],
    [2, 20],
    [3, 30],
  ] as const) {
    await writeCapacitySample(
      capacitySample(
        100,
        { totalBytes: 100 * GIB, freeBytes: (100 - used) * GIB, usedBytes: used * GIB },
        Date.now() - (4 - day) * 86_400_000,
      ),
    );
  }
  await images.put(
    image(7, 1, 'FULL', {
      size: 3 * 1024 * 1024,
      createdAt: '2026-01-02T03:04:05.000Z',
      verifyState: 'OK',
      verifiedAt: '2026-01-03T00:00:00.000Z',
    }),
  );
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  await mkdir(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  delete process.env.LIFEBOAT_SECRET_STORE;
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  await browser?.close();
  await gateway?.stop();
  await db?.stop();
});

/** A fresh browser tab at 1280 px, recording every request it makes. */
async function openConsole(): Promise<{ page: Page; requests: { url: string; auth?: string }[] }> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const requests: { url: string; auth?: string }[] = [];
  page.on('request', (req) => {
    const auth = req.headers().authorization;
    requests.push({ url: req.url(), ...(auth ? { auth } : {}) });
  });
  await page.goto(`${gateway.endpoint}/`);
  return { page, requests };
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** An API answer for alice (the browser's view checked against the API). */
async function apiGet(path: string): Promise<unknown> {
  const res = await fetch(`${gateway.endpoint}${path}`, { headers: { authorization: `Bearer ${alice}` } });
  expect(res.status, path).toBe(200);
  return res.json();
}

/** Pick `option` in the Cloudscape select whose trigger's name matches `trigger`. */
async function choose(page: Page, trigger: RegExp, option: string | RegExp): Promise<void> {
  await page.getByRole('button', { name: trigger }).first().click();
  await page
    .getByRole('option', typeof option === 'string' ? { name: option, exact: true } : { name: option })
    .first()
    .click();
}

/**
 * In the page: the visible buttons, links, inputs and selects without an accessible name (as a
 * browser would compute it, roughly: aria-label, aria-labelledby, a label, or text).
 * (An expression string: this file is type-checked without the DOM library.)
 */
const UNLABELLED_CONTROLS = `(() => {
  const named = (el) => {
    if (el.getAttribute('aria-label')?.trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).some((id) => document.getElementById(id)?.textContent?.trim())) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    if (el.getAttribute('title')?.trim()) return true;
    return !['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName) && el.textContent.trim() !== '';
  };
  return [...document.querySelectorAll('button, a[href], input:not([type=hidden]), textarea, select, [role=button]')]
    .filter((el) => el.getClientRects().length > 0 && !el.closest('[aria-hidden=true], [inert]') && !named(el))
    .map((el) => el.outerHTML.slice(0, 600));
})()`;

/**
 * axe-core's WCAG 2 A/AA violations of impact serious or critical on the page, one line each:
 * the rule, its help text and the elements it found.
 */
async function axeViolations(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ ...v, nodes: v.nodes.filter((n) => !cloudscapeOwn(v.id, n.html, n.failureSummary)) }))
    .filter((v) => v.nodes.length > 0)
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} [${v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`).join(', ')}]`,
    );
}

/**
 * The one violation that comes from inside Cloudscape and that no prop of ours removes: at phone
 * width AppLayout's mobile toolbar renders `<nav aria-orientation="horizontal">` (app-layout/
 * visual-refresh/mobile-toolbar.js, Cloudscape 3.0.1383), and aria-orientation is not allowed on
 * a navigation landmark. Only that rule, only that element, only that attribute is let through.
 */
function cloudscapeOwn(rule: string, html: string, summary = ''): boolean {
  return (
    rule === 'aria-allowed-attr' &&
    /^<nav [^>]*class="[^"]*awsui_mobile-toolbar-nav_/.test(html) &&
    /aria-orientation="horizontal"/.test(summary) &&
    !/aria-(?!orientation)[a-z]+="/.test(summary)
  );
}

describe('web console', () => {
  it('signs in with a token, shows the user, their VMs and datastores only, and signs out', async () => {
    const { page, requests } = await openConsole();
    await signIn(page, alice);
    await page.getByRole('button', { name: 'alice (users)' }).waitFor();
    // The dashboard first: nothing ran today, nothing runs, the datastore's free space.
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByText('70.0 GiB free of 100.0 GiB').waitFor();
    expect(await page.getByText('Nothing is running.').count()).toBe(1);
    // Needs attention (GET /stats): alice's VM has no schedule to miss and no failed verify.
    await page.getByText('Every scheduled backup is on time; no verification failed.').waitFor();
    expect(await page.getByText('admin-only-ds').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-1280.png'), fullPage: true });

    // VMs: the caller's VM with its state, host, BACKUP_CONFIG and last backup; not the admin's.
    await page.getByRole('link', { name: 'VMs' }).first().click();
    const row = page.getByRole('row', { name: /alice-web/ });
    await row.waitFor();
    const cells = (await row.textContent()) ?? '';
    expect(cells).toContain('RUNNING');
    expect(cells).toContain('hv-console');
    expect(cells).toContain('KEEP_LAST=3, MODE=INCREMENT');
    expect(cells).toContain('3.0 MiB');
    expect(await page.getByText('admin-secret-vm').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'vms-1280.png'), fullPage: true });

    // Datastores: capacity as a bar with used, free and total.
    await page.getByRole('link', { name: 'Datastores' }).first().click();
    const ds = page.getByRole('row', { name: /alice-restic/ });
    await ds.waitFor();
    expect(await ds.textContent()).toContain('30.0 GiB used, 70.0 GiB free of 100.0 GiB');
    expect(await ds.locator('progress').getAttribute('value')).toBe('30');
    expect(await page.getByText('admin-only-ds').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'datastores-1280.png'), fullPage: true });
    // Images: each with its last verification.
    await page.getByRole('link', { name: 'Images' }).first().click();
    const verified = page.getByRole('row', { name: /1-7/ });
    await verified.waitFor();
    expect(await verified.textContent()).toMatch(/OK \S/);
    await page.getByRole('link', { name: 'Datastores' }).first().click();
    // Its page: the figures and the chart of used and free space over the samples kept.
    await page.getByRole('link', { name: 'alice-restic' }).click();
    await page.getByRole('heading', { name: 'Used and free space over time' }).waitFor();
    // The chart's legend names both series once the samples are in.
    const chart = page.getByRole('region', { name: 'Used and free space over time' });
    await chart.getByText('Used', { exact: true }).first().waitFor();
    await chart.getByText('Free', { exact: true }).first().waitFor();
    expect(await chart.getByText('Not measured yet').count()).toBe(0);
    expect(await page.getByText('100.0 GiB').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, 'datastore-1280.png'), fullPage: true });

    // Images: the VM's backup with its mode, size and state.
    await page.getByRole('link', { name: 'Images' }).first().click();
    const image = page.getByRole('row', { name: /1-7/ });
    await image.waitFor();
    const imageText = (await image.textContent()) ?? '';
    expect(imageText).toContain('READY');
    expect(imageText).toContain('FULL');
    expect(imageText).toContain('3.0 MiB');

    // Hosts: state, runner version, running backups against the host's MAX_BACKUPS_HOST.
    await page.getByRole('link', { name: 'Hosts' }).first().click();
    const host = page.getByRole('row', { name: /hv-console/ });
    await host.waitFor();
    const hostText = (await host.textContent()) ?? '';
    expect(hostText).toContain('MONITORED');
    expect(hostText).toContain('1.2.3');
    expect(hostText).toContain('0 of 4');

    // The token: in sessionStorage, in Authorization headers, never in a URL, nothing elsewhere.
    expect(await page.evaluate(() => sessionStorage.getItem('lifeboat.token'))).toBe(alice);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(page.url()).not.toContain(alice);
    for (const r of requests) {
      expect(r.url).not.toContain(alice);
      expect(new URL(r.url).origin).toBe(gateway.endpoint);
    }
    const apiCalls = requests.filter((r) =>
      /\/(me|vms|datastores|tokens|users)\b/.test(new URL(r.url).pathname),
    );
    expect(apiCalls.length).toBeGreaterThan(0);
    for (const r of apiCalls) expect(r.auth).toBe(`Bearer ${alice}`);

    // A reload keeps the session (sessionStorage, checked again against the API).
    await page.reload();
    await page.getByRole('row', { name: /hv-console/ }).waitFor();

    // Phone width: the page itself does not scroll sideways (the table scrolls in its own box).
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${gateway.endpoint}/#/vms`);
    await page.getByText('alice-web').first().waitFor();
    // (An expression string: this file is type-checked without the DOM library.)
    expect(Number(await page.evaluate('document.documentElement.scrollWidth'))).toBeLessThanOrEqual(375);
    await page.screenshot({ path: join(ARTIFACTS, 'vms-375.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Sign-out: the token is gone and the sign-in form is back.
    await page.getByRole('button', { name: /alice \(users\)/ }).click();
    await page.getByText('Sign out').click();
    await page.getByLabel('API token').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('lifeboat.token'))).toBeNull();
    await page.context().close();
  });

  it('backs a VM up from its page, lists the execution and cancels it from its page', async () => {
    const { page } = await openConsole();
    await signIn(page, alice);
    // The VM page: its BACKUP_CONFIG and its backups.
    await page.getByRole('link', { name: 'VMs' }).first().click();
    await page.getByRole('link', { name: 'alice-web' }).click();
    await page.getByRole('heading', { name: 'VM 1: alice-web' }).waitFor();
    // The BACKUP_CONFIG form shows the VM's MODE.
    await page
      .getByRole('button', { name: /\(MODE\)/ })
      .filter({ hasText: 'INCREMENT' })
      .waitFor();
    expect(await page.getByRole('row', { name: /FULL/ }).textContent()).toContain('3.0 MiB');
    // Back up now: a real queued backup (no dispatcher runs here: it stays QUEUED until cancelled).
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByRole('button', { name: 'Datastore' }).click();
    await page.getByRole('option', { name: /alice-restic/ }).click();
    await page.getByRole('button', { name: 'Start backup' }).click();
    const queued = page.getByText('Backup queued').locator('..').locator('..');
    await queued.waitFor();
    const id = ((await queued.getByRole('link').textContent()) ?? '').trim();
    expect(id).toMatch(/^\S+$/);
    const listed = await fetch(`${gateway.endpoint}/executions/${id}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(await listed.json()).toMatchObject({
      state: 'QUEUED',
      vmId: 1,
      datastoreId: 100,
      requestedBy: 'alice',
    });
    await page.screenshot({ path: join(ARTIFACTS, 'vm-1280.png'), fullPage: true });
    // A second one while the first waits: the API's refusal, shown in the dialog, nothing queued.
    await page.getByRole('button', { name: 'Back up now' }).click();
    await page.getByRole('button', { name: 'Start backup' }).click();
    await page
      .getByRole('dialog')
      .getByText(`VM 1 already has a backup queued (execution ${id})`, { exact: true })
      .waitFor();
    await page.getByRole('button', { name: 'Close', exact: true }).click();
    const all = await fetch(`${gateway.endpoint}/executions`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(((await all.json()) as { items: unknown[] }).items).toHaveLength(1);

    await page.getByRole('link', { name: 'Executions' }).first().click();
    const row = page.getByRole('row', { name: new RegExp(id) });
    await row.waitFor();
    expect(await row.textContent()).toContain('QUEUED');
    await row.getByRole('link', { name: id }).click();
    await page.getByRole('heading', { name: `Execution ${id}` }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByText('ABORTED').first().waitFor();
    await page.getByText('cancelled', { exact: true }).waitFor();
    expect(await page.getByRole('button', { name: 'Cancel' }).isDisabled()).toBe(true);
    const shown = await fetch(`${gateway.endpoint}/executions/${id}`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    expect(((await shown.json()) as { state: string }).state).toBe('ABORTED');
    // The dashboard counts it among today's cancelled backups.
    await page.getByRole('link', { name: 'Dashboard' }).first().click();
    const cancelled = page.getByText('Cancelled', { exact: true }).locator('..');
    await cancelled.getByText('1', { exact: true }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'execution-1280.png'), fullPage: true });
    await page.context().close();
  });

  it('the admin, whose token is on its user record (older than the tokens table), sees their name and group', async () => {
    const { page, requests } = await openConsole();
    await signIn(page, ADMIN);
    await page.getByRole('button', { name: 'admin (admin)' }).waitFor();
    expect(requests.some((r) => new URL(r.url).pathname === '/me')).toBe(true);
    await page.context().close();
  });

  it('an admin creates a datastore and edits it; its password is sent once and never shown', async () => {
    const { page } = await openConsole();
    const answers: string[] = [];
    page.on('response', async (res) => {
      if (new URL(res.url()).pathname.startsWith('/datastores'))
        answers.push(await res.text().catch(() => ''));
    });
    await signIn(page, ADMIN);
    await page.getByRole('link', { name: 'Datastores' }).first().click();
    await page.getByRole('button', { name: 'Create datastore' }).click();
    await page.getByLabel('Datastore name').fill('console-made');
    await page.getByRole('dialog').locator('textarea').fill('RESTIC_PASSWORD=in-the-open');
    await page.getByRole('dialog').getByRole('button', { name: 'Create datastore' }).click();
    // A secret typed among the attributes is refused before anything is sent.
    await page.getByText('RESTIC_PASSWORD is a secret: type it in its own field').waitFor();
    await page.getByRole('dialog').locator('textarea').fill('BASE_PATH=/tmp/console-made');
    await page.getByLabel('RESTIC_PASSWORD').fill('typed-once-pw');
    await page.getByRole('dialog').getByRole('button', { name: 'Create datastore' }).click();
    const refused = page.getByText('Create datastore refused');
    await page.getByRole('link', { name: 'console-made' }).or(refused).first().waitFor();
    if ((await refused.count()) > 0) expect.fail(`refused: ${await page.getByRole('dialog').textContent()}`);
    const made = (await datastores.list()).find((d) => d.name === 'console-made');
    expect(made).toMatchObject({
      driver: 'restic',
      attributes: { BASE_PATH: '/tmp/console-made' },
      secretAttributes: ['RESTIC_PASSWORD'],
    });
    // Edit: the password field starts empty (left blank: kept); the API's refusal is shown.
    await page.getByRole('link', { name: 'console-made' }).click();
    await page.getByRole('button', { name: 'Edit' }).click();
    expect(await page.getByLabel('RESTIC_PASSWORD').inputValue()).toBe('');
    await page.getByRole('dialog').locator('textarea').fill('BASE_PATH=/tmp/console-made\nNO_SUCH_KEY=1');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Save refused').waitFor();
    expect(await page.getByRole('dialog').textContent()).toContain('NO_SUCH_KEY');
    await page.getByRole('dialog').locator('textarea').fill('BASE_PATH=/tmp/console-made-2');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Save refused').waitFor({ state: 'detached' });
    await expect
      .poll(async () => (await datastores.get(made?.id ?? 0)).attributes.BASE_PATH)
      .toBe('/tmp/console-made-2');
    expect((await datastores.get(made?.id ?? 0)).secretAttributes).toEqual(['RESTIC_PASSWORD']);
    expect(answers.join('\n')).not.toContain('typed-once-pw');
    await page.context().close();
    await datastores.delete(made?.id ?? 0);
  });

  it('a wrong token shows the API refusal and no data, and is not kept', async () => {
    const { page } = await openConsole();
    const wrong = 'lb_not-a-real-token-0123456789';
    await signIn(page, wrong);
    // The API's own message (the authorizer's 401), next to the action that failed.
    await page.getByText('Sign-in failed: invalid token', { exact: true }).waitFor();
    expect(await page.getByText('alice-web').count()).toBe(0);
    expect(await page.getByRole('table').count()).toBe(0);
    expect(page.url()).not.toContain(wrong);
    expect(await page.evaluate(() => sessionStorage.getItem('lifeboat.token'))).toBeNull();
    await page.screenshot({ path: join(ARTIFACTS, 'sign-in-refused-1280.png') });
    await page.context().close();
  });
  it('edits BACKUP_CONFIG, shows the restore points as chains, schedules backups and restores through the wizard', async () => {
    // A chain flattened by KEEP_LAST: its base is point 2 (points 0 and 1 merged), then point 3.
    await images.put(
      image(8, 1, 'INCREMENT', {
        // A chain's image is stored as its FULL's backup.
        source: 'snap-2',
        size: 5 * 1024 * 1024,
        disks: [{ id: 0, size: 4 << 20, virtualSize: 8 << 20, format: 'qcow2' }],
        increments: [
          { id: 2, type: 'FULL', source: 'snap-2', size: 4 << 20, date: '2026-02-01T00:00:00.000Z' },
          {
            id: 3,
            parent: 2,
            type: 'INCREMENT',
            source: 'snap-3',
            size: 1 << 20,
            date: '2026-02-02T00:00:00.000Z',
          },
        ],
        createdAt: '2026-02-01T00:00:00.000Z',
      }),
    );
    const { page } = await openConsole();
    await signIn(page, alice);
    await page.goto(`${gateway.endpoint}/#/vms/1`);
    await page.getByRole('heading', { name: 'VM 1: alice-web' }).waitFor();

    // BACKUP_CONFIG: a bad KEEP_LAST is refused under its field with the API's wording, Save off.
    const keepLast = page.getByRole('textbox', { name: /KEEP_LAST/ });
    await keepLast.fill('x');
    await page.getByText('KEEP_LAST must be a non-negative integer (got "x")').waitFor();
    expect(await page.getByRole('button', { name: 'Save backup config' }).isDisabled()).toBe(true);
    await keepLast.fill('5');
    await choose(page, /\(FS_FREEZE\)/, 'AGENT');
    await choose(page, /\(MODE\)/, 'FULL');
    await page.getByRole('button', { name: 'Save backup config' }).click();
    await page.getByText('Saved', { exact: true }).waitFor();
    expect(((await apiGet('/vms/1/backup-config')) as { config: unknown }).config).toMatchObject({
      KEEP_LAST: '5',
      FS_FREEZE: 'AGENT',
      MODE: 'FULL',
    });
    // What only the API knows (these disks cannot increment): its 400 message next to Save.
    await choose(page, /\(MODE\)/, 'INCREMENT');
    await page.getByRole('button', { name: 'Save backup config' }).click();
    await page
      .getByText('MODE INCREMENT needs every disk of the VM to support incremental backups', { exact: true })
      .waitFor();
    expect(((await apiGet('/vms/1/backup-config')) as { config: unknown }).config).toMatchObject({
      MODE: 'FULL',
    });

    // The restore points: each chain its FULL then its increments, sizes, dates; flattened marked.
    const chain = page.getByRole('list', { name: 'Restore points of image 8' });
    await chain.waitFor();
    const points = await chain
      .getByRole('listitem')
      .evaluateAll((items) => items.map((i) => i.getAttribute('aria-label')));
    expect(points).toHaveLength(2);
    expect(points[0]).toMatch(/^Image 8 point 2: FULL \(flattened\), 4\.0 MiB, /);
    expect(points[1]).toMatch(/^Image 8 point 3: INCREMENT, 1\.0 MiB, /);
    const single = page.getByRole('list', { name: 'Restore points of image 7' });
    expect(await single.getByRole('listitem').getAttribute('aria-label')).toMatch(
      /^Image 7 point 0: FULL, 3\.0 MiB, /,
    );

    // The image's own page: its disks, its points and the URLs its files download from.
    await page.goto(`${gateway.endpoint}/#/images/8`);
    const pointRows = page.getByRole('table', { name: 'Restore points of the image' }).getByRole('row');
    await pointRows.nth(2).waitFor();
    expect(await pointRows.nth(1).textContent()).toContain('snap-2');
    expect(await pointRows.nth(2).textContent()).toContain('snap-3');
    expect(await page.getByRole('table', { name: 'Disks of the image' }).textContent()).toContain('8.0 MiB');
    const urls = downloadUrlsOf('restic', (await images.get(8)) as Image);
    expect(urls.length).toBeGreaterThan(0);
    const shown = await page
      .getByRole('list', { name: 'Download URLs' })
      .getByRole('listitem')
      .allTextContents();
    expect(shown).toEqual(urls);
    await page.goto(`${gateway.endpoint}/#/vms/1`);
    await page.getByRole('list', { name: 'Restore points of image 8' }).waitFor();

    // Scheduled backups: daily, ending after 3 runs; listed, then deleted.
    await page.getByRole('button', { name: 'Add schedule' }).click();
    await choose(page, /^Repeat/, 'daily');
    await page.getByRole('button', { name: 'After runs' }).click();
    await page.getByRole('textbox', { name: 'Number of runs' }).fill('3');
    await page.getByRole('dialog').getByRole('button', { name: 'Add schedule' }).click();
    const schedule = page.getByRole('row', { name: /daily; ends after 3 runs/ });
    await schedule.waitFor();
    const stored = (await apiGet('/vms/1/schedules')) as { items: { id: number; spec: unknown }[] };
    expect(stored.items).toHaveLength(1);
    expect(stored.items[0]?.spec).toMatchObject({ repeat: { kind: 'daily' }, end: { count: 3 } });
    await page.screenshot({ path: join(ARTIFACTS, 'vm-config-1280.png'), fullPage: true });
    await schedule.getByRole('button', { name: /Delete schedule/ }).click();
    await page.getByText('No scheduled backups').waitFor();
    expect(((await apiGet('/vms/1/schedules')) as { items: unknown[] }).items).toHaveLength(0);

    // The restore wizard: point 3 of image 8, to a folder, without the IP addresses.
    await page.getByRole('button', { name: 'Restore', exact: true }).click();
    const wizard = page.getByRole('dialog');
    await choose(page, /^Backup image/, /^Image 8 \(1-8\)/);
    await choose(page, /^Point/, /^Point 3 INCREMENT/);
    await wizard.getByRole('button', { name: 'Next' }).click();
    // In place needs the VM's name typed: Next is refused until then.
    await wizard.getByText(/^In place, over alice-web/).click();
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText('Type alice-web to confirm the overwrite').waitFor();
    await wizard.getByText('A new VM or disk files').click();
    await wizard.getByRole('textbox', { name: /Folder/ }).fill('restored/alice-web');
    await wizard.getByText('NO_IP: do not keep the IP addresses').click();
    await page.screenshot({ path: join(ARTIFACTS, 'restore-wizard-1280.png') });
    await wizard.getByRole('button', { name: 'Next' }).click();
    await wizard.getByText('restored/alice-web').waitFor();
    await wizard.getByRole('button', { name: 'Restore', exact: true }).click();
    const queued = page.getByText('Restore queued').locator('..').locator('..');
    await queued.waitFor();
    const id = ((await queued.getByRole('link').textContent()) ?? '').trim();
    // No runner runs here: what the API recorded is the request the runner would carry out.
    expect(await apiGet(`/executions/${id}`)).toMatchObject({
      kind: 'restore',
      state: 'QUEUED',
      vmId: 1,
      imageId: 8,
      hostId: 3,
      params: { incrementId: 3, targetDir: 'restored/alice-web', noIp: true, noNic: false, define: false },
    });
    await page.context().close();
  });

  it('creates a backup job with its VMs in order, runs it and shows its lists', async () => {
    // VMs no other test backs up or restores (a VM with a queued restore would land in ERROR).
    await vms.put(vm(3, 'alice-db', 'alice', 'users', {}));
    await vms.put(vm(4, 'alice-app', 'alice', 'users', {}));
    const { page } = await openConsole();
    await signIn(page, alice);
    await page.getByRole('link', { name: 'Backup jobs' }).first().click();
    await page.getByText('No backup jobs').waitFor();
    await page.getByRole('button', { name: 'Create job' }).click();
    const form = page.getByRole('dialog');
    await form.getByRole('textbox', { name: 'Job name' }).fill('nightly');
    await choose(page, /Add a VM/, /^alice-app/);
    await choose(page, /Add a VM/, /^alice-db/);
    await form.getByRole('button', { name: 'Move alice-db up' }).click();
    expect(await form.getByRole('list', { name: 'VMs in backup order' }).textContent()).toBe(
      'alice-db (3)alice-app (4)',
    );
    await form.getByRole('button', { name: 'Parallel' }).click();
    await form.getByRole('textbox', { name: 'Priority' }).fill('5');
    // A priority only admins may give: the API's refusal in the dialog, nothing created.
    await form.getByRole('textbox', { name: 'Priority' }).fill('60');
    await form.getByRole('button', { name: 'Create job' }).click();
    await form.getByText('priority above 49 is for admins').waitFor();
    expect(((await apiGet('/jobs')) as { items: unknown[] }).items).toHaveLength(0);
    await form.getByRole('textbox', { name: 'Priority' }).fill('5');
    await form.getByRole('button', { name: 'Create job' }).click();
    const row = page.getByRole('row', { name: /nightly/ });
    await row.waitFor();
    expect(await row.textContent()).toContain('alice-db → alice-app');
    const [job] = ((await apiGet('/jobs')) as { items: { id: number }[] }).items;
    expect(job).toMatchObject({ name: 'nightly', vmIds: [3, 4], priority: 5, execution: 'PARALLEL' });

    // Run now: the VMs leave OUTDATED for BACKING_UP as their backups are queued.
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByText(/Run started: \d+ backups queued/).waitFor();
    const running = (await apiGet(`/jobs/${job?.id}`)) as { outdatedVms: number[]; backingUpVms: number[] };
    expect([...running.outdatedVms, ...running.backingUpVms].sort()).toEqual([3, 4]);
    const backingUp = page.getByRole('region', { name: 'BACKING_UP VMs' });
    for (const id of running.backingUpVms)
      await backingUp.getByText(id === 4 ? 'alice-app' : 'alice-db').waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'jobs-1280.png'), fullPage: true });

    // Edit while it runs: a new priority is taken (only what changed is sent, not its VMs).
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    await page.getByRole('dialog').getByRole('textbox', { name: 'Priority' }).fill('7');
    await page.getByRole('dialog').getByRole('button', { name: 'Save job' }).click();
    await page.getByText('PARALLEL, priority 7', { exact: false }).waitFor();
    expect(await apiGet(`/jobs/${job?.id}`)).toMatchObject({ priority: 7, vmIds: [3, 4] });

    // Retry: a job whose last run left a VM in ERROR backs that VM up again.
    await vms.put(vm(5, 'alice-batch', 'alice', 'users', { BACKUP_JOB_ID: '51' }));
    await jobs.put({
      id: 51,
      name: 'retry-me',
      owner: 'alice',
      group: 'users',
      permissions: 'uma------',
      vmIds: [5],
      datastoreId: 100,
      errorVms: [5],
      lastRunAt: new Date().toISOString(),
      createdAt: new Date().toISOString(),
    });
    await page.getByRole('button', { name: 'Refresh backup jobs' }).click();
    await page.getByRole('radio', { name: 'Select job retry-me' }).click();
    await page.getByRole('region', { name: 'ERROR VMs' }).getByText('alice-batch').waitFor();
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByText('Retry started: 1 backups queued').waitFor();
    await page.getByRole('region', { name: 'BACKING_UP VMs' }).getByText('alice-batch').waitFor();
    expect(await apiGet('/jobs/51')).toMatchObject({ errorVms: [], backingUpVms: [5] });
    await page.context().close();
  });

  it('lists the restore drills of the images the user may use: result, points, bytes, seconds, why one failed', async () => {
    await images.put(image(9, 2, 'FULL'));
    const drill = (id: number, imageId: number, vmId: number, result: 'OK' | 'FAILED', extra = {}) => ({
      id,
      imageId,
      vmId,
      datastoreId: imageId === 7 ? 100 : 101,
      hostId: 3,
      executionId: `console-drill-${id}`,
      latestOnly: false,
      result,
      requestedBy: 'scheduler',
      createdAt: `2026-01-0${id}T00:00:00.000Z`,
      ...extra,
    });
    await drills.put(drill(1, 7, 1, 'OK', { points: 2, bytes: 3 * 1024 * 1024, seconds: 41.5 }));
    await drills.put(
      drill(2, 7, 1, 'FAILED', { points: 1, seconds: 12, error: 'disk 0: sha256 differs from the backup' }),
    );
    await drills.put(drill(3, 9, 2, 'OK', { points: 1 }));
    const { page } = await openConsole();
    await signIn(page, alice);
    await page.getByRole('link', { name: 'Restore drills' }).click();
    const table = page.getByRole('table');
    await table.getByText('disk 0: sha256 differs from the backup').waitFor();
    const rows = table.getByRole('row');
    // The header and alice's two drills, newest first; the admin's image's drill is not shown.
    expect(await rows.count()).toBe(3);
    const cells = async (row: number) =>
      (await rows.nth(row).getByRole('cell').allTextContents()).map((t) => t.trim());
    // ID, image, VM, result, error, points started, restored, seconds, requested, host, execution.
    const date = expect.stringContaining('2026');
    const failed = ['2', '7', '1', 'FAILED', 'disk 0: sha256 differs from the backup', '1', '-', '12.0'];
    expect(await cells(1)).toEqual([...failed, date, '3', 'console-drill-2']);
    expect(await cells(2)).toEqual([
      '1',
      '7',
      '1',
      'OK',
      '',
      '2',
      '3.0 MiB',
      '41.5',
      date,
      '3',
      'console-drill-1',
    ]);
    expect(await table.getByText('console-drill-3').count()).toBe(0);
    // The image's link leads to its page.
    await rows.nth(2).getByRole('link', { name: '7' }).click();
    await page.getByRole('heading', { name: '1-7' }).waitFor();
    await page.context().close();
  });

  it('every page: screenshots at 1280, 1920 and 375 px, no sideways scrolling, every control labelled, no serious axe violation', async () => {
    // A finished backup of 90 s for the duration chart.
    await executions.put({
      id: 'console-finished-backup',
      kind: 'backup',
      state: 'SUCCEEDED',
      phase: 'done',
      vmId: 1,
      hostId: 3,
      datastoreId: 100,
      imageId: 8,
      requestedBy: 'alice',
      startedAt: '2026-02-02T00:00:00.000Z',
      endedAt: '2026-02-02T00:01:30.000Z',
      createdAt: '2026-02-02T00:00:00.000Z',
    });
    const { page } = await openConsole();
    await signIn(page, alice);
    await page.getByRole('button', { name: 'alice (users)' }).waitFor();
    // Each page with what shows it loaded.
    const pages: [string, string, string][] = [
      ['dashboard', '/', '70.0 GiB free of 100.0 GiB'],
      ['vms', '/vms', 'alice-web'],
      ['vm', '/vms/1', 'Restore points of image 8'],
      ['images', '/images', '1-8'],
      ['image', '/images/8', 'Download URLs'],
      ['jobs', '/jobs', 'alice-db → alice-app'],
      ['executions', '/executions', 'restore'],
      ['datastores', '/datastores', 'alice-restic'],
      ['datastore', '/datastores/100', 'Used and free space over time'],
      ['hosts', '/hosts', 'hv-console'],
      ['drills', '/drills', 'disk 0: sha256 differs from the backup'],
      ['charts', '/charts', 'Legend of backup durations'],
    ];
    for (const width of [1280, 1920, 375]) {
      await page.setViewportSize({ width, height: 900 });
      for (const [name, route, loaded] of pages) {
        await page.goto(`${gateway.endpoint}/#${route}`);
        // Visible only: the side navigation, hidden at 375 px, has words of its own ("Restore drills").
        await page.getByText(loaded).or(page.getByLabel(loaded)).filter({ visible: true }).first().waitFor();
        await page.screenshot({ path: join(ARTIFACTS, `page-${name}-${width}.png`), fullPage: true });
        // No layout break: the page itself never scrolls sideways (tables scroll in their box).
        const scroll = Number(await page.evaluate('document.documentElement.scrollWidth'));
        expect(scroll, `${name} at ${width} px`).toBeLessThanOrEqual(width);
        // Every control has an accessible name; buttons, inputs and links without one fail with
        // the page named.
        const unlabelled = await page.evaluate(UNLABELLED_CONTROLS);
        expect(unlabelled, `${name} at ${width} px`).toEqual([]);
        // axe (WCAG 2 A and AA): no serious or critical violation; the message says what to fix.
        const serious = await axeViolations(page);
        expect(serious, `axe on ${name} at ${width} px:\n${serious.join('\n')}`).toEqual([]);
      }
    }
    // The charts: a line per VM of its restore points' sizes, a bar per finished backup.
    await page.goto(`${gateway.endpoint}/#/charts`);
    const sizeChart = page.getByRole('region', { name: 'Backup size over time' });
    await sizeChart.getByText('alice-web').first().waitFor();
    const durationChart = page.getByRole('region', { name: 'Backup duration over time' });
    await durationChart.getByText('alice-web').first().waitFor();
    // Keyboard: the VM page's actions are reached with Tab alone.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${gateway.endpoint}/#/vms/1`);
    await page.getByRole('heading', { name: 'VM 1: alice-web' }).waitFor();
    const reached = new Set<string>();
    for (let i = 0; i < 80 && reached.size < 3; i++) {
      await page.keyboard.press('Tab');
      const text = String(await page.evaluate('document.activeElement?.textContent?.trim() ?? ""'));
      if (['Restore', 'Back up now', 'Add schedule'].includes(text)) reached.add(text);
    }
    expect([...reached].sort()).toEqual(['Add schedule', 'Back up now', 'Restore']);
    await page.context().close();
  });
});
