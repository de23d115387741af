/**
 * The hostile battery through the HTTP API: the API handler in process over DynamoDB Local and
 * the SQS emulator, with an admin, two users, two enrolled hosts (real host credentials), VMs
 * reported by a host, restic datastores with passwords and READY images. Every row of
 * cases-paths.ts and cases-objects.ts must answer its 4xx with `{ error, message }` (one line,
 * short), quote no secret, and change nothing: every table, every queue's message counts and
 * the secret store are compared with a snapshot taken before the row. Controls at the end
 * send each row's starting request with sane values and see it accepted, so each refusal is
 * owed to the hostile change alone; and no secret reached a log line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { images } from '#functions/repo/images.ts';
import { vms } from '#functions/repo/vms.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { type ApiAnswer, call, seedUser } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from '../helpers/dynamodb-local.ts';
import { type LocalSqs, startLocalSqs } from '../helpers/fauxqs.ts';
import { type Case, type Fixture, type Principal, resolve } from './cases.ts';
import { OBJECT_CASES } from './cases-objects.ts';
import { PATH_CASES } from './cases-paths.ts';
import { changes, type StateSnapshot, stateSnapshotter } from './state.ts';

const ADMIN = 'lb_admin-hostile-battery-0123456789';
const ALICE = 'lb_alice-hostile-battery-0123456789';
const BOB = 'lb_bob-hostile-battery-0123456789';
const PASSWORDS = {
  alice: 'pw-alice-Zq8!correct-horse-battery',
  bob: 'pw-bob-Tr0ub4dor&3-staple',
  admin: 'pw-admin-9f2c1ab7-never-shown',
};
/** Secrets the rows themselves send: they must not come back either. */
const SENT_SECRETS = ['pw-new-0123', 'bob-knows-it'];

let db: DynamoDbLocal;
let sqs: LocalSqs;
let secretsDir: string;
let snapshots: ReturnType<typeof stateSnapshotter>;
let baseline: StateSnapshot;
const tokens: Partial<Record<Principal, string>> = { admin: ADMIN, alice: ALICE, bob: BOB };
const fixture = {} as Fixture;
const logged: string[] = [];

/** Every secret value the setup made or the rows send. */
function secrets(): string[] {
  return [
    ...Object.values(PASSWORDS),
    ...SENT_SECRETS,
    ...Object.values(tokens).filter((t) => t !== undefined),
  ];
}

const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [
    { id: 0, target: 'vda', source: `/var/lib/libvirt/images/${name}.qcow2`, format: 'qcow2', size: 1024 },
  ],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

async function ok(answer: Promise<ApiAnswer>, status: number): Promise<ApiAnswer> {
  const done = await answer;
  expect(done.status, done.raw).toBe(status);
  return done;
}

async function enroll(name: string): Promise<string> {
  return (await ok(call('POST', '/hosts/enroll', { token: ADMIN, body: { name } }), 201)).body.token;
}

async function register(name: string, token: string): Promise<{ id: number; credential: string }> {
  const body = { name, publicKey: generateHostKeyPair().publicKey };
  const res = await ok(call('POST', '/hosts/register', { token, body }), 201);
  return { id: res.body.host.id, credential: res.body.credential };
}

/** A restic datastore made by the admin (only admins create datastores) and given to `owner`. */
async function resticDatastore(owner: string, name: string, password: string): Promise<number> {
  const body = {
    name,
    driver: 'restic',
    attributes: { RESTIC_PASSWORD: password, BASE_PATH: '/srv/backups' },
  };
  const id = (await ok(call('POST', '/datastores', { token: ADMIN, body }), 201)).body.id;
  if (owner !== 'admin') {
    const chown = { owner, group: 'users' };
    await ok(call('PUT', `/datastores/${id}/owner`, { token: ADMIN, body: chown }), 200);
  }
  return id;
}

function readyImage(
  id: number,
  owner: string,
  group: string,
  vmId: number,
  datastoreId: number,
  source: string,
) {
  return images.put({
    owner,
    group,
    permissions: 'um-------',
    id,
    name: `${vmId}-${id}`,
    type: 'BACKUP',
    vmId,
    datastoreId,
    state: 'READY',
    mode: 'FULL',
    source,
    size: 10,
    disks: [{ id: 0, size: 10, virtualSize: 1024, format: 'raw', file: 'disk.0.raw' }],
    template: '',
    increments: [],
    createdAt: new Date().toISOString(),
  });
}

beforeAll(async () => {
  secretsDir = await mkdtemp(join(tmpdir(), 'lifeboat-hostile-api-'));
  process.env.LIFEBOAT_SECRET_STORE = `local:${secretsDir}/secrets`;
  // Every level, so every line the API writes is checked for secrets.
  delete process.env.LIFEBOAT_LOG_LEVEL;
  delete process.env.DISPATCHER_FUNCTION_NAME;
  for (const stream of ['log', 'error', 'warn', 'info'] as const) {
    vi.spyOn(console, stream).mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '));
    });
  }
  [db, sqs] = await Promise.all([startDynamoDbLocal(), startLocalSqs()]);
  await seedUser('admin', ADMIN, 'admin', 'admin');
  await seedUser('alice', ALICE, 'user', 'users');
  await seedUser('bob', BOB, 'user', 'users');

  // Two hosts enrolled the way runners are: the first one's token is spent, a third is not.
  tokens.spentEnrollment = await enroll('kvm-1');
  const host = await register('kvm-1', tokens.spentEnrollment);
  const host2 = await register('kvm-2', await enroll('kvm-2'));
  tokens.freshEnrollment = await enroll('kvm-3');
  tokens.host = host.credential;
  tokens.host2 = host2.credential;

  const report = await ok(
    call('PUT', `/hosts/${host.id}/inventory`, {
      token: host.credential,
      body: { vms: [domain('alice-vm'), domain('bob-vm')] },
    }),
    200,
  );
  const [aliceVm, bobVm] = report.body.items.map((v: { id: number }) => v.id) as [number, number];
  // Alice was granted admin on her VM: one-shot backups and in-place restores need it.
  await vms.update(aliceVm, { owner: 'alice', group: 'users', permissions: 'uma------' });
  await vms.update(bobVm, { owner: 'bob', group: 'users' });

  const dsAlice = await resticDatastore('alice', 'ds-alice', PASSWORDS.alice);
  const dsBob = await resticDatastore('bob', 'ds-bob', PASSWORDS.bob);
  const dsAdmin = await resticDatastore('admin', 'ds-admin', PASSWORDS.admin);
  await readyImage(901, 'alice', 'users', aliceVm, dsAlice, 'snap-alice');
  await readyImage(902, 'admin', 'admin', aliceVm, dsAdmin, 'snap-admin');
  const execution = await ok(
    call('POST', '/images/901/restore', { token: ALICE, body: { name: 'first-copy' } }),
    202,
  );
  Object.assign(fixture, {
    hostId: host.id,
    host2Id: host2.id,
    aliceVm,
    bobVm,
    dsAlice,
    dsAdmin,
    dsBob,
    imgAlice: 901,
    imgAdmin: 902,
    aliceExecution: execution.body.id,
    url: `restic://${dsAlice}/snap-alice/disk.0.raw`,
    password: PASSWORDS.alice,
  } satisfies Fixture);

  snapshots = stateSnapshotter(db.endpoint, db.tables, join(secretsDir, 'secrets'));
  baseline = await snapshots.take();
});

afterAll(async () => {
  vi.restoreAllMocks();
  snapshots?.close();
  await Promise.all([db?.stop(), sqs?.stop()]);
  await rm(secretsDir, { recursive: true, force: true });
});

/** Sends a row's request as its principal. */
function send(row: Case): Promise<ApiAnswer> {
  const token = row.as === 'none' ? undefined : tokens[row.as];
  const body = row.body === undefined ? undefined : resolve(row.body, fixture);
  return call(row.method, resolve(row.path, fixture), { ...(token ? { token } : {}), body });
}

const CASES = [...PATH_CASES, ...OBJECT_CASES];

describe('hostile requests', () => {
  it('are at least 100, each named once', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(100);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, row) => {
    const answer = await send(row);
    // Compared with the state before this row only (taken before any assertion), so a row that
    // writes fails alone.
    const now = await snapshots.take();
    const written = changes(baseline, now);
    baseline = now;
    expect(answer.status, answer.raw.slice(0, 400)).toBe(row.status);
    expect(Object.keys(answer.body ?? {}).sort()).toEqual(['error', 'message']);
    const { error, message } = answer.body as { error: string; message: string };
    expect(error).toMatch(/^[A-Z][A-Za-z]+$/);
    if (row.message) expect(message).toMatch(row.message);
    // One short line: no control character, nothing echoed at length.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is checked
    expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(message.length).toBeLessThanOrEqual(800);
    for (const secret of secrets()) expect(answer.raw).not.toContain(secret);
    expect(written).toEqual([]);
  });
});

describe('controls: each row’s starting request, with sane values', () => {
  it('is accepted, so every refusal above was owed to its hostile change', async () => {
    const f = fixture;
    const as = (token: string | undefined) => ({ token: token as string });
    await ok(
      call('POST', '/downloads', { ...as(ALICE), body: { url: f.url, toPath: 'exports/disk.raw' } }),
      202,
    );
    await ok(call('POST', `/images/${f.imgAlice}/restore`, { ...as(ALICE), body: { name: 'copy-1' } }), 202);
    for (const driver of [
      {
        name: 'ds-new',
        driver: 'restic',
        attributes: { RESTIC_PASSWORD: 'pw-x', BASE_PATH: '/srv/backups' },
      },
      {
        name: 'ds-new-2',
        driver: 'rsync',
        attributes: { RSYNC_HOST: 'backup-1', RSYNC_ARGS: '-aS --bwlimit=100' },
      },
    ])
      await ok(call('POST', '/datastores', { ...as(ADMIN), body: driver }), 201);
    await ok(
      call('PATCH', `/datastores/${f.dsAlice}`, {
        ...as(ADMIN),
        body: { attributes: { BASE_PATH: '/srv/other' } },
      }),
      200,
    );
    await ok(
      call('PUT', `/vms/${f.aliceVm}/backup-config`, { ...as(ALICE), body: { pairs: { KEEP_LAST: '2' } } }),
      200,
    );
    await ok(
      call('POST', `/vms/${f.aliceVm}/schedules`, {
        ...as(ALICE),
        body: { datastoreId: f.dsAlice, time: '+3600' },
      }),
      201,
    );
    await ok(
      call('POST', `/vms/${f.aliceVm}/backup`, { ...as(ALICE), body: { datastoreId: f.dsAlice } }),
      202,
    );
    await ok(
      call('POST', '/jobs', {
        ...as(ALICE),
        body: { name: 'nightly', vmIds: [f.aliceVm], datastoreId: f.dsAlice },
      }),
      201,
    );
    const report = { vms: [domain('alice-vm'), domain('bob-vm'), domain('x')], runnerVersion: '1.0' };
    await ok(call('PUT', `/hosts/${f.hostId}/inventory`, { ...as(tokens.host), body: report }), 200);
    await ok(call('POST', '/hosts', { ...as(ADMIN), body: { name: 'kvm-9', cluster: 'blue' } }), 201);
  });

  it('wrote no secret and no unhandled error to the log', () => {
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged) {
      for (const secret of secrets()) expect(line).not.toContain(secret);
      expect(line).not.toContain('unhandled error');
    }
  });
});
