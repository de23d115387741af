/**
 * The authorization matrix, generated from the route table (functions/api/routes.ts) and the
 * rights table (core/rights.ts): every route is called as an admin, the objects' owner (alice),
 * a member of their group (bob), another user (carol), a host's runner and nobody, on fresh
 * objects owned by alice and her group with permissions 740 (owner use/manage/admin, group use,
 * others nothing), and each answer must be what the route's row says: 401 without a token, 403
 * (or, for another's execution, 404) when the row refuses the caller, anything but 401/403 and
 * 5xx when it allows. A refusal changes nothing (every table compared before and after). A
 * route without a row in the rights table, or without a sample request here, fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ROUTE_RIGHTS, type ObjectKind, type RouteRights } from '#core/rights.ts';
import { hashToken } from '#functions/api/auth.ts';
import { ROUTES, routeKey } from '#functions/api/routes.ts';
import { datastores } from '#functions/repo/datastores.ts';
import { drills } from '#functions/repo/drills.ts';
import { images } from '#functions/repo/images.ts';
import { jobs } from '#functions/repo/jobs.ts';
import { users } from '#functions/repo/users.ts';
import { vms } from '#functions/repo/vms.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { type ApiAnswer, call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';
import { changes, type StateSnapshot, stateSnapshotter } from '../security/state.ts';

const TOKENS = {
  admin: 'lb_matrix-admin-0123456789abcdef',
  alice: 'lb_matrix-alice-0123456789abcdef',
  bob: 'lb_matrix-bob-0123456789abcdef0',
  carol: 'lb_matrix-carol-0123456789abcdef',
  runner: 'lbh_matrix-runner-0123456789abcdef',
};
type Caller = keyof typeof TOKENS | 'anonymous';
/** Refused callers first: their calls must change nothing, and the allowed ones may. */
const CALLERS: Caller[] = ['anonymous', 'runner', 'carol', 'bob', 'alice', 'admin'];
/** Each user's bits on the fixtures (permissions `uma u-- ---`, owner alice, group web). */
const BITS: Record<'alice' | 'bob' | 'carol', string> = { alice: 'uma', bob: 'u--', carol: '---' };
const PERMISSIONS = 'umau-----';
const RIGHT_BIT = { use: 'u', manage: 'm', admin: 'a' } as const;

/** The objects a route's sample request acts on, made fresh for each route. */
interface Fixture {
  n: number;
  hostId: number;
  vmId: number;
  jobVmId: number;
  domains: object[];
  dsId: number;
  imageId: number;
  jobId: number;
  vmSchedId: number;
  jobSchedId: number;
  dsSchedId: number;
  executionId: string;
  drillId: number;
  tokenId: string;
  spareHostId: number;
  spareUser: string;
  spareGroup: string;
}

/** A sample request of a route; `applies` narrows the object rows it exercises (default: all). */
interface Sample {
  path: string;
  body?: unknown;
  applies?: ObjectKind[];
}

const SAMPLES: Record<string, (f: Fixture) => Sample> = {
  'GET /hosts': () => ({ path: '/hosts' }),
  'POST /hosts': (f) => ({ path: '/hosts', body: { name: `new-host-${f.n}` } }),
  'POST /hosts/enroll': (f) => ({ path: '/hosts/enroll', body: { name: `enrolled-${f.n}` } }),
  'POST /hosts/register': (f) => ({
    path: '/hosts/register',
    body: { name: `reg-${f.n}`, publicKey: generateHostKeyPair().publicKey },
  }),
  'GET /hosts/{id}': (f) => ({ path: `/hosts/${f.hostId}` }),
  'PATCH /hosts/{id}': (f) => ({ path: `/hosts/${f.spareHostId}`, body: { emulatorCpus: '0' } }),
  'DELETE /hosts/{id}': (f) => ({ path: `/hosts/${f.spareHostId}` }),
  'PUT /hosts/{id}/inventory': (f) => ({ path: `/hosts/${f.hostId}/inventory`, body: { vms: f.domains } }),
  'GET /vms': () => ({ path: '/vms' }),
  'GET /vms/{id}': (f) => ({ path: `/vms/${f.vmId}` }),
  'DELETE /vms/{id}': (f) => ({ path: `/vms/${f.vmId}` }),
  'GET /vms/{id}/backup-config': (f) => ({ path: `/vms/${f.vmId}/backup-config` }),
  'PUT /vms/{id}/backup-config': (f) => ({
    path: `/vms/${f.vmId}/backup-config`,
    body: { pairs: { KEEP_LAST: '3' } },
  }),
  'POST /vms/{id}/backup': (f) => ({ path: `/vms/${f.vmId}/backup`, body: { datastoreId: f.dsId } }),
  'PUT /vms/{id}/owner': (f) => ({ path: `/vms/${f.vmId}/owner`, body: { group: 'web' } }),
  'PUT /vms/{id}/permissions': (f) => ({ path: `/vms/${f.vmId}/permissions`, body: { permissions: '740' } }),
  'GET /datastores': () => ({ path: '/datastores' }),
  'POST /datastores': (f) => ({
    path: '/datastores',
    body: { name: `ds-new-${f.n}`, driver: 'restic', attributes: { RESTIC_PASSWORD: 'pw-matrix-new' } },
  }),
  'GET /datastores/{id}': (f) => ({ path: `/datastores/${f.dsId}` }),
  'PATCH /datastores/{id}': (f) => ({ path: `/datastores/${f.dsId}`, body: { name: `ds-renamed-${f.n}` } }),
  'DELETE /datastores/{id}': (f) => ({ path: `/datastores/${f.dsId}` }),
  'PUT /datastores/{id}/owner': (f) => ({ path: `/datastores/${f.dsId}/owner`, body: { group: 'web' } }),
  'PUT /datastores/{id}/permissions': (f) => ({
    path: `/datastores/${f.dsId}/permissions`,
    body: { permissions: '740' },
  }),
  'POST /datastores/{id}/monitor': (f) => ({ path: `/datastores/${f.dsId}/monitor` }),
  'POST /datastores/{id}/import': (f) => ({ path: `/datastores/${f.dsId}/import` }),
  'GET /datastores/{id}/capacity': (f) => ({ path: `/datastores/${f.dsId}/capacity` }),
  'GET /images': () => ({ path: '/images' }),
  'GET /images/{id}': (f) => ({ path: `/images/${f.imageId}` }),
  'DELETE /images/{id}': (f) => ({ path: `/images/${f.imageId}` }),
  'PUT /images/{id}/owner': (f) => ({ path: `/images/${f.imageId}/owner`, body: { group: 'web' } }),
  'PUT /images/{id}/permissions': (f) => ({
    path: `/images/${f.imageId}/permissions`,
    body: { permissions: '740' },
  }),
  'POST /images/{id}/restore': (f) => ({
    path: `/images/${f.imageId}/restore`,
    body: { name: `copy-${f.n}` },
    applies: ['image'],
  }),
  'POST /images/{id}/verify': (f) => ({ path: `/images/${f.imageId}/verify` }),
  'GET /drills': () => ({ path: '/drills' }),
  'GET /drills/{id}': (f) => ({ path: `/drills/${f.drillId}` }),
  'POST /downloads': (f) => ({
    path: '/downloads',
    body: { url: `restic://${f.dsId}/snap-${f.n}/disk.0.raw`, toPath: `dl-${f.n}` },
  }),
  'GET /executions': () => ({ path: '/executions' }),
  'GET /executions/{id}': (f) => ({ path: `/executions/${f.executionId}` }),
  'POST /executions/{id}/cancel': (f) => ({ path: `/executions/${f.executionId}/cancel` }),
  'GET /config': () => ({ path: '/config' }),
  'GET /vms/{id}/schedules': (f) => ({ path: `/vms/${f.vmId}/schedules` }),
  'POST /vms/{id}/schedules': (f) => ({
    path: `/vms/${f.vmId}/schedules`,
    body: { time: '+7200', datastoreId: f.dsId },
  }),
  'DELETE /vms/{id}/schedules/{schedId}': (f) => ({ path: `/vms/${f.vmId}/schedules/${f.vmSchedId}` }),
  'GET /datastores/{id}/schedules': (f) => ({ path: `/datastores/${f.dsId}/schedules` }),
  'POST /datastores/{id}/schedules': (f) => ({
    path: `/datastores/${f.dsId}/schedules`,
    body: { time: '+7200', action: 'verify', repeat: 'weekly' },
  }),
  'DELETE /datastores/{id}/schedules/{schedId}': (f) => ({
    path: `/datastores/${f.dsId}/schedules/${f.dsSchedId}`,
  }),
  'GET /jobs': () => ({ path: '/jobs' }),
  'POST /jobs': (f) => ({
    path: '/jobs',
    body: { name: `job-new-${f.n}`, vmIds: [f.vmId], datastoreId: f.dsId },
  }),
  'GET /jobs/{id}': (f) => ({ path: `/jobs/${f.jobId}` }),
  'PATCH /jobs/{id}': (f) => ({
    path: `/jobs/${f.jobId}`,
    body: { datastoreId: f.dsId, vmIds: [f.jobVmId] },
  }),
  'DELETE /jobs/{id}': (f) => ({ path: `/jobs/${f.jobId}` }),
  'PUT /jobs/{id}/owner': (f) => ({ path: `/jobs/${f.jobId}/owner`, body: { group: 'web' } }),
  'PUT /jobs/{id}/permissions': (f) => ({
    path: `/jobs/${f.jobId}/permissions`,
    body: { permissions: '740' },
  }),
  'POST /jobs/{id}/backup': (f) => ({ path: `/jobs/${f.jobId}/backup` }),
  'POST /jobs/{id}/retry': (f) => ({ path: `/jobs/${f.jobId}/retry` }),
  'GET /jobs/{id}/schedules': (f) => ({ path: `/jobs/${f.jobId}/schedules` }),
  'POST /jobs/{id}/schedules': (f) => ({
    path: `/jobs/${f.jobId}/schedules`,
    body: { time: '+7200' },
    applies: ['job'],
  }),
  'DELETE /jobs/{id}/schedules/{schedId}': (f) => ({ path: `/jobs/${f.jobId}/schedules/${f.jobSchedId}` }),
  'GET /me': () => ({ path: '/me' }),
  'GET /users': () => ({ path: '/users' }),
  'POST /users': (f) => ({ path: '/users', body: { name: `newbie${f.n}`, group: 'web' } }),
  'GET /users/{name}': () => ({ path: '/users/alice' }),
  'PATCH /users/{name}': (f) => ({ path: `/users/${f.spareUser}`, body: { group: 'other' } }),
  'DELETE /users/{name}': (f) => ({ path: `/users/${f.spareUser}` }),
  'GET /groups': () => ({ path: '/groups' }),
  'POST /groups': (f) => ({ path: '/groups', body: { name: `grp${f.n}` } }),
  'GET /groups/{name}': () => ({ path: '/groups/web' }),
  'DELETE /groups/{name}': (f) => ({ path: `/groups/${f.spareGroup}` }),
  'GET /users/{name}/quota': () => ({ path: '/users/alice/quota' }),
  'PUT /users/{name}/quota': (f) => ({
    path: '/users/alice/quota',
    body: { datastoreId: f.dsId, pairs: { SIZE: '100', IMAGES: '3' } },
  }),
  'GET /groups/{name}/quota': () => ({ path: '/groups/web/quota' }),
  'PUT /groups/{name}/quota': () => ({ path: '/groups/web/quota', body: { pairs: { SIZE: '1000' } } }),
  'GET /tokens': () => ({ path: '/tokens' }),
  'POST /tokens': (f) => ({ path: '/tokens', body: { name: `t${f.n}` } }),
  'DELETE /tokens/{tokenId}': (f) => ({ path: `/tokens/${f.tokenId}` }),
  'GET /audit': () => ({ path: '/audit' }),
  'GET /stats': () => ({ path: '/stats' }),
  'GET /openapi.json': () => ({ path: '/openapi.json' }),
  'GET /runner/hosts/{id}': (f) => ({ path: `/runner/hosts/${f.hostId}` }),
  'PUT /runner/hosts/{id}/inventory': (f) => ({
    path: `/runner/hosts/${f.hostId}/inventory`,
    body: { vms: [] },
  }),
  'PUT /runner/hosts/{id}/key': (f) => ({
    path: `/runner/hosts/${f.hostId}/key`,
    body: { publicKey: generateHostKeyPair().publicKey },
  }),
};

type Outcome = 'allowed' | 'forbidden' | 'unauthorized' | 'refused' | 'denied';

/** What the row says `caller` gets for the sample (`runner` acts for host `hostId`). */
function expected(key: string, row: RouteRights, caller: Caller, sample: Sample, hostId: number): Outcome {
  // The API's description is for anyone, a token or none.
  if (row.caller === 'anyone') return 'allowed';
  if (caller === 'anonymous') return 'unauthorized';
  // Routes for other principals: a bearer token of a user or host never passes them.
  if (row.caller === 'iam' || row.caller === 'enrollment') return 'refused';
  if (caller === 'runner') {
    const ownHost = sample.path.startsWith(`/hosts/${hostId}`);
    return ownHost && (row.caller === 'host' || key === 'GET /hosts/{id}') ? 'allowed' : 'forbidden';
  }
  if (caller === 'admin') return 'allowed';
  if (row.caller === 'admin' || row.caller === 'host') return 'forbidden';
  if (row.caller === 'self') return caller === 'alice' ? 'allowed' : 'forbidden';
  // The samples name group web: alice and bob are in it, carol is not.
  if (row.caller === 'member') return caller === 'carol' ? 'forbidden' : 'allowed';
  if (row.caller === 'requester') return caller === 'alice' ? 'allowed' : 'denied';
  const bits = BITS[caller];
  for (const kind of sample.applies ?? (Object.keys(row.objects ?? {}) as ObjectKind[])) {
    const right = row.objects?.[kind];
    if (right && !bits.includes(RIGHT_BIT[right])) return 'forbidden';
  }
  return 'allowed';
}

function holds(outcome: Outcome, answer: ApiAnswer): boolean {
  switch (outcome) {
    case 'allowed':
      return answer.status !== 401 && answer.status !== 403 && answer.status < 500;
    case 'forbidden':
      return answer.status === 403 && answer.body?.error === 'Forbidden';
    case 'unauthorized':
      return answer.status === 401;
    case 'refused':
      return answer.status === 401 || answer.status === 403;
    case 'denied':
      return answer.status === 403 || answer.status === 404;
  }
}

let snapshot: ReturnType<typeof stateSnapshotter>;
let hostId: number;

async function ok(answer: Promise<ApiAnswer>, status: number): Promise<ApiAnswer> {
  const done = await answer;
  expect(done.status, done.raw).toBe(status);
  return done;
}

const admin = (method: string, path: string, body?: unknown, status = 200) =>
  ok(call(method, path, { token: TOKENS.admin, body }), status);

const ALICES = { owner: 'alice', group: 'web', permissions: PERMISSIONS };

const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [
    { id: 0, target: 'vda', source: `/var/lib/libvirt/images/${name}.qcow2`, format: 'qcow2', size: 1024 },
  ],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

/** Fresh objects for route number `n`, owned by alice and group web with permissions 740. */
async function fixture(n: number): Promise<Fixture> {
  const domains = [domain(`m${n}-a`), domain(`m${n}-j`)];
  const report = await admin('PUT', `/hosts/${hostId}/inventory`, { vms: domains });
  const byName = new Map<string, number>(
    report.body.items.map((v: { domain: string; id: number }) => [v.domain, v.id]),
  );
  const vmId = byName.get(`m${n}-a`) as number;
  const jobVmId = byName.get(`m${n}-j`) as number;
  const ds = await admin(
    'POST',
    '/datastores',
    { name: `ds-${n}`, driver: 'restic', attributes: { RESTIC_PASSWORD: 'pw-matrix' } },
    201,
  );
  const dsId = ds.body.id as number;
  const job = await admin('POST', '/jobs', { name: `job-${n}`, vmIds: [jobVmId], datastoreId: dsId }, 201);
  const jobId = job.body.id as number;
  const imageId = 5000 + n;
  await images.put({
    ...ALICES,
    id: imageId,
    name: `${vmId}-${imageId}`,
    type: 'BACKUP',
    vmId,
    datastoreId: dsId,
    state: 'READY',
    mode: 'FULL',
    source: `snap-${n}`,
    size: 10,
    disks: [{ id: 0, size: 10, virtualSize: 1024, format: 'raw', file: 'disk.0.raw' }],
    template: '',
    increments: [],
    createdAt: new Date().toISOString(),
  });
  for (const id of [vmId, jobVmId]) await vms.update(id, ALICES);
  await datastores.update(dsId, ALICES);
  await jobs.update(jobId, ALICES);
  const vmSched = await admin('POST', `/vms/${vmId}/schedules`, { time: '+3600', datastoreId: dsId }, 201);
  const jobSched = await admin('POST', `/jobs/${jobId}/schedules`, { time: '+3600' }, 201);
  const dsSched = await admin(
    'POST',
    `/datastores/${dsId}/schedules`,
    { time: '+3600', action: 'verify' },
    201,
  );
  const execution = await ok(
    call('POST', `/images/${imageId}/restore`, { token: TOKENS.alice, body: { name: `first-${n}` } }),
    202,
  );
  // A drill report of alice's image: seen by whoever may use the image.
  const drillId = 7000 + n;
  await drills.put({
    id: drillId,
    imageId,
    vmId,
    datastoreId: dsId,
    hostId,
    executionId: `drill-exec-${n}`,
    result: 'OK',
    requestedBy: 'alice',
    createdAt: new Date().toISOString(),
  });
  const token = await ok(call('POST', '/tokens', { token: TOKENS.alice, body: { name: `fx${n}` } }), 201);
  const spare = await admin('POST', '/hosts', { name: `spare-${n}` }, 201);
  const spareUser = `zed${n}`;
  await admin('POST', '/users', { name: spareUser, group: 'web' }, 201);
  const spareGroup = `spare${n}`;
  await admin('POST', '/groups', { name: spareGroup }, 201);
  return {
    n,
    hostId,
    vmId,
    jobVmId,
    domains,
    dsId,
    imageId,
    jobId,
    vmSchedId: vmSched.body.id,
    jobSchedId: jobSched.body.id,
    dsSchedId: dsSched.body.id,
    executionId: execution.body.id,
    drillId,
    tokenId: token.body.id,
    spareHostId: spare.body.id,
    spareUser,
    spareGroup,
  };
}

const plane = useControlPlane({
  name: 'matrix',
  secrets: 'subfolder',
  admin: { token: TOKENS.admin, group: 'admin' },
});
beforeAll(async () => {
  for (const group of ['web', 'other']) await admin('POST', '/groups', { name: group }, 201);
  await seedUser('alice', TOKENS.alice, 'user', 'web');
  await seedUser('bob', TOKENS.bob, 'user', 'web');
  await seedUser('carol', TOKENS.carol, 'user', 'other');
  hostId = (
    await admin('POST', '/hosts', { name: 'matrix-host', publicKey: generateHostKeyPair().publicKey }, 201)
  ).body.id;
  await users.put({
    name: `host:${hostId}`,
    group: 'hosts',
    role: 'host',
    hostId,
    tokenHash: hashToken(TOKENS.runner),
    createdAt: new Date().toISOString(),
  });
  snapshot = stateSnapshotter(plane.db.endpoint, { ...plane.db.tables, audit: undefined }, plane.secretsDir);
});
afterAll(async () => {
  snapshot?.close();
});

describe('the authorization matrix', () => {
  const keys = ROUTES.map(routeKey);

  it('has a row in the rights table and a sample request for every route, and no other', () => {
    expect(Object.keys(DEFAULT_ROUTE_RIGHTS).sort()).toEqual([...keys].sort());
    expect(Object.keys(SAMPLES).sort()).toEqual([...keys].sort());
  });

  keys.forEach((key, n) => {
    it(`${key}: each caller gets what its row says, and a refusal changes nothing`, async () => {
      const row = DEFAULT_ROUTE_RIGHTS[key] as RouteRights;
      const sampleOf = SAMPLES[key] as (f: Fixture) => Sample;
      const f = await fixture(n);
      const sample = sampleOf(f);
      const method = key.slice(0, key.indexOf(' '));
      const misses: string[] = [];
      // Refused calls in a row are compared with one snapshot taken before the first of them.
      let before: StateSnapshot | undefined;
      const refused: Caller[] = [];
      const settle = async () => {
        if (before) {
          const changed = changes(before, await snapshot.take());
          if (changed.length) misses.push(`${refused.join(', ')}: refused but changed ${changed.join(', ')}`);
        }
        before = undefined;
        refused.length = 0;
      };
      for (const caller of CALLERS) {
        const outcome = expected(key, row, caller, sample, hostId);
        if (outcome === 'allowed') await settle();
        else {
          before ??= await snapshot.take();
          refused.push(caller);
        }
        const token = caller === 'anonymous' ? undefined : TOKENS[caller];
        const answer = await call(method, sample.path, { token, body: sample.body });
        if (!holds(outcome, answer))
          misses.push(`${caller}: expected ${outcome}, got ${answer.status} ${answer.raw}`);
      }
      await settle();
      expect(misses).toEqual([]);
    });
  });
});
