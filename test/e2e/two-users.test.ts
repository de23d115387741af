/**
 * Two users on one local stack with a real VM: alice backs up and restores her VM (the restored
 * disk holds the same bytes); bob sees none of alice's VMs, images or jobs and is refused each
 * action on them (403, nothing changed); alice's datastore quota refuses her next backup before
 * it is queued (no execution), deleting her image frees it, and the next backup passes.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupJob, Datastore, Execution, Image, Vm } from '#core/model.ts';
import type { QuotaEntry } from '#core/quota.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, removeTestVm, type TestVm } from '../helpers/libvirt.ts';
import { type CliResult, guestSha256, removeHome, runCli, type Stack, startStack, until } from './harness.ts';

const NAME = 'lb-e2e-h12q-alice';
const MiB = 1024 * 1024;

let stack: Stack;
let scratch: string;
let source: TestVm;
let vm: Vm;
let ds: Datastore;
let image: Image;
let sha: string;
const tokens: Record<'alice' | 'bob', string> = { alice: '', bob: '' };

/** `lifeboat ...args` as `who`, with the endpoint and their token from the environment. */
function as(who: 'alice' | 'bob', args: readonly string[]): Promise<CliResult> {
  return runCli(args, {
    LIFEBOAT_HOME: join(scratch, who),
    LIFEBOAT_ENDPOINT: stack.endpoint,
    LIFEBOAT_TOKEN: tokens[who],
    LIFEBOAT_POLL_INTERVAL_MS: '200',
  });
}

/** A direct API call as `who` (cheaper than a CLI process): status and body. */
async function call(who: 'alice' | 'bob', method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.endpoint}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokens[who]}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Alice's quota entry on the datastore. */
async function aliceOnDs(): Promise<QuotaEntry> {
  const view = await stack.api<{ entries: QuotaEntry[] }>('GET', '/users/alice/quota');
  return view.entries.find((e) => e.datastore === ds.id) as QuotaEntry;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-two-users-'));
  await mkdir(join(scratch, 'restores'));
  source = await createTestVm({ name: NAME, disks: [{ sizeMiB: 16, format: 'qcow2' }], running: false });
  const disk = source.disks[0]?.path as string;
  await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0x61 1M 3M', disk] });
  sha = await guestSha256(disk, 'qcow2');
  stack = await startStack({ env: { LIFEBOAT_RESTORE_ROOTS: join(scratch, 'restores') } });
  expect((await stack.cli(['group', 'create', 'web'])).code).toBe(0);
  for (const [who, group] of [
    ['alice', 'web'],
    ['bob', 'users'],
  ] as const) {
    const made = await stack.json<{ token: string }>(['user', 'create', who, '--group', group]);
    tokens[who] = made.token;
  }
  const seen = await stack.vm(NAME, 'POWEROFF');
  await stack.api('PUT', `/vms/${seen.id}/owner`, { owner: 'alice', group: 'web' });
  await stack.api('PUT', `/vms/${seen.id}/permissions`, { permissions: '700' });
  ds = await stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    'h12q',
    '--driver',
    'restic',
    '--attr',
    `BASE_PATH=${join(scratch, 'restic')}`,
    '--attr',
    'RESTIC_PASSWORD=two users pw',
  ]);
  // Group web may back up to it; bob (group users) may not even see it.
  await stack.api('PUT', `/datastores/${ds.id}/owner`, { group: 'web' });
  await stack.api('PUT', `/datastores/${ds.id}/permissions`, { permissions: '640' });
  vm = await stack.api<Vm>('GET', `/vms/${seen.id}`);
}, 120_000);

afterAll(async () => {
  await removeTestVm(NAME).catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  await rm(scratch, { recursive: true, force: true });
}, 60_000);

describe('two users on one stack', () => {
  it('alice backs up her VM and restores it: the same bytes', async () => {
    const out = await as('alice', ['vm', 'backup', String(vm.id), '-d', String(ds.id), '--wait', '--json']);
    expect(out.code, out.stderr).toBe(0);
    const execution = JSON.parse(out.stdout) as Execution;
    expect(execution).toMatchObject({ state: 'SUCCEEDED', requestedBy: 'alice' });
    image = (await call('alice', 'GET', `/images/${execution.imageId}`)).body as Image;
    expect(image).toMatchObject({ owner: 'alice', group: 'web', state: 'READY' });
    const restored = await as('alice', [
      'image',
      'restore',
      String(image.id),
      '--to',
      'alice-copy',
      '--name',
      'alice-copy',
      '--wait',
      '--json',
    ]);
    expect(restored.code, restored.stderr).toBe(0);
    const dir = join(scratch, 'restores', 'alice-copy');
    const disk = (await readdir(dir)).find((f) => /disk-0\.(qcow2|raw)$/.test(f)) as string;
    expect(await guestSha256(join(dir, disk), disk.endsWith('.raw') ? 'raw' : 'qcow2')).toBe(sha);
  }, 60_000);

  it("bob sees none of alice's VMs, images or jobs, and is refused each action with 403, nothing changed", async () => {
    const job = await call('alice', 'POST', '/jobs', {
      name: 'alice-job',
      vmIds: [vm.id],
      datastoreId: ds.id,
    });
    expect(job.status).toBe(201);
    const jobId = (job.body as BackupJob).id;
    const snapshot = async () => ({
      vm: (await call('alice', 'GET', `/vms/${vm.id}`)).body,
      image: (await call('alice', 'GET', `/images/${image.id}`)).body,
      job: (await call('alice', 'GET', `/jobs/${jobId}`)).body,
      executions: (await stack.api<{ items: Execution[] }>('GET', '/executions')).items.length,
    });
    const before = await snapshot();
    for (const path of ['/vms', '/images', '/jobs', '/executions', '/datastores']) {
      const list = await call('bob', 'GET', path);
      expect(list.status, path).toBe(200);
      expect(list.body.items, path).toEqual([]);
    }
    const refused: [string, string, unknown?][] = [
      ['GET', `/vms/${vm.id}`],
      ['POST', `/vms/${vm.id}/backup`, { datastoreId: ds.id }],
      ['PUT', `/vms/${vm.id}/backup-config`, { pairs: { KEEP_LAST: '1' } }],
      ['PUT', `/vms/${vm.id}/permissions`, { permissions: '777' }],
      ['DELETE', `/vms/${vm.id}`],
      ['GET', `/images/${image.id}`],
      ['POST', `/images/${image.id}/restore`, { name: 'bob-copy' }],
      ['DELETE', `/images/${image.id}`],
      ['PUT', `/images/${image.id}/permissions`, { permissions: '777' }],
      ['GET', `/jobs/${jobId}`],
      ['POST', `/jobs/${jobId}/backup`],
      ['PATCH', `/jobs/${jobId}`, { priority: 10 }],
      ['DELETE', `/jobs/${jobId}`],
      ['GET', '/users/alice/quota'],
      ['PUT', '/users/bob/quota', { pairs: { SIZE: '-1' } }],
    ];
    for (const [method, path, body] of refused) {
      const answer = await call('bob', method, path, body);
      expect([answer.status, answer.body?.error], `${method} ${path}`).toEqual([403, 'Forbidden']);
    }
    expect(await snapshot()).toEqual(before);
    expect((await call('alice', 'DELETE', `/jobs/${jobId}`)).status).toBe(204);
  }, 30_000);

  it('a full quota refuses the next backup before it is queued; deleting the image frees it', async () => {
    const used = await aliceOnDs();
    expect(used.images.used).toBe(1);
    expect(used.size.used).toBe(Math.ceil(image.size / MiB));
    // Room for the image alice has and one MiB less than her next backup's estimate.
    const estimate = Math.ceil((vm.disks[0]?.allocated ?? (vm.disks[0]?.size as number)) / MiB);
    const limit = used.size.used + estimate - 1;
    expect((await stack.cli(['user', 'quota', 'alice', String(ds.id), `SIZE=${limit}`])).code).toBe(0);
    const shown = await as('alice', ['user', 'quota', 'alice']);
    expect(shown.stdout).toMatch(new RegExp(`^${ds.id}\\s+${used.size.used} / ${limit}\\s+1 / -$`, 'm'));

    const executions = async () =>
      (await stack.api<{ items: Execution[] }>('GET', '/executions')).items.length;
    const before = await executions();
    const refused = await as('alice', ['vm', 'backup', String(vm.id), '-d', String(ds.id)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `Forbidden: quota exceeded: user alice on datastore ${ds.id}: SIZE ${used.size.used} of ${limit} MiB used, this backup needs about ${estimate} MiB`,
    );
    expect(await executions()).toBe(before);

    expect((await as('alice', ['image', 'delete', String(image.id)])).code).toBe(0);
    await until(
      'the image deleted and its quota freed',
      async () => ((await call('alice', 'GET', `/images/${image.id}`)).status === 404 ? true : undefined),
      30_000,
      250,
    );
    expect(await aliceOnDs()).toEqual({
      datastore: ds.id,
      size: { used: 0, limit },
      images: { used: 0, limit: -1 },
    });
    const next = await as('alice', ['vm', 'backup', String(vm.id), '-d', String(ds.id), '--wait', '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(JSON.parse(next.stdout)).toMatchObject({ state: 'SUCCEEDED' });
    expect((await aliceOnDs()).images.used).toBe(1);
  }, 60_000);

  it('the audit trail holds the changes of each user, refusals included, and no reads', async () => {
    type Entry = { user: string; route: string; status: number; error?: string; object?: string };
    const trail = async (user: string) => {
      const entries: Entry[] = [];
      let next: string | undefined;
      do {
        const query = `/audit?user=${user}&limit=100${next ? `&next=${encodeURIComponent(next)}` : ''}`;
        const page = await stack.api<{ items: Entry[]; next?: string }>('GET', query);
        entries.push(...page.items);
        next = page.next;
      } while (next);
      return entries;
    };
    const alice = await trail('alice');
    expect(alice.every((e) => e.user === 'alice')).toBe(true);
    const routes = (entries: Entry[], status: number) =>
      new Set(entries.filter((e) => e.status === status).map((e) => e.route));
    expect([...routes(alice, 202)]).toEqual(
      expect.arrayContaining(['POST /vms/{id}/backup', 'POST /images/{id}/restore', 'DELETE /images/{id}']),
    );
    // The backup the quota refused is there too, with its refusal.
    expect(alice).toContainEqual(
      expect.objectContaining({ route: 'POST /vms/{id}/backup', status: 403, error: 'Forbidden' }),
    );
    const bob = await trail('bob');
    expect(bob.every((e) => e.user === 'bob' && e.status === 403 && e.error === 'Forbidden')).toBe(true);
    expect(routes(bob, 403)).toEqual(
      new Set([
        'POST /vms/{id}/backup',
        'PUT /vms/{id}/backup-config',
        'PUT /vms/{id}/permissions',
        'DELETE /vms/{id}',
        'POST /images/{id}/restore',
        'DELETE /images/{id}',
        'PUT /images/{id}/permissions',
        'POST /jobs/{id}/backup',
        'PATCH /jobs/{id}',
        'DELETE /jobs/{id}',
        'PUT /users/{name}/quota',
      ]),
    );
    // Reads are not recorded.
    expect([...alice, ...bob].some((e) => e.route.startsWith('GET '))).toBe(false);
  }, 30_000);
});
