/**
 * `GET /openapi.json` through the real API handler on a control plane with data in it: no token
 * needed, the same document the generator builds, nothing stored in it (no secret, no name); and
 * the real answers of the routes match the schemas the document gives them (checked with an
 * independent JSON Schema 2020-12 validator), errors included.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '#functions/api/openapi.ts';
import { matchRoute } from '#functions/api/router.ts';
import { type ApiAnswer, call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'lb_openapi-admin-0123456789abcdef';
const PASSWORD = 'openapi-secret-pw-8f3a';

useControlPlane({
  name: 'openapi',
  admin: { token: ADMIN },
  hosts: ['openapi-host'],
  resticPassword: PASSWORD,
  inventory: [
    {
      domain: 'openapi-vm',
      state: 'RUNNING',
      disks: [{ id: 0, target: 'vda', source: '/images/openapi-vm.qcow2', format: 'qcow2', size: 1 << 20 }],
      nics: [{ id: 0, network: 'default', ip: '192.0.2.7' }],
      template: '<domain/>',
    },
  ],
});

// biome-ignore lint/suspicious/noExplicitAny: the document is plain JSON read by path.
let doc: any;
let vmId: number;
beforeAll(async () => {
  doc = (await call('GET', '/openapi.json')).body;
  vmId = (await call('GET', '/vms', { token: ADMIN })).body.items[0].id;
});

describe('GET /openapi.json', () => {
  it('answers the document without a token, as JSON, with no stored value in it', async () => {
    const answer = await call('GET', '/openapi.json');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    // What the fixture stored (its secret, names, addresses, the admin's token) appears nowhere.
    expect((await call('GET', '/datastores/1', { token: ADMIN })).body.secretAttributes).toContain(
      'RESTIC_PASSWORD',
    );
    for (const stored of [PASSWORD, 'openapi-host', 'openapi-vm', '192.0.2.7', ADMIN])
      expect(answer.raw).not.toContain(stored);
  });

  it('ignores a bad token instead of refusing it: the document is the same for everyone', async () => {
    const answer = await call('GET', '/openapi.json', { token: 'lb_not-a-token' });
    expect(answer.status).toBe(200);
    expect(answer.body.info.title).toBe('Lifeboat API');
  });

  it('is the only route a request without a token gets an answer from', async () => {
    expect((await call('GET', '/config')).status).toBe(401);
    expect((await call('POST', '/openapi.json')).status).toBe(401);
  });
});

describe('the real answers', () => {
  /** Whether `answer` of `METHOD url` matches the schema the document gives that status (or 4XX). */
  function check(method: string, url: string, answer: ApiAnswer): void {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema({ $id: 'lifeboat', components: doc.components });
    const path = url.split('?')[0] ?? url;
    const key = matchRoute(method, path)?.key ?? '';
    const template = key.slice(key.indexOf(' ') + 1);
    const responses = doc.paths[template]?.[method.toLowerCase()]?.responses ?? {};
    const declared = responses[String(answer.status)] ?? responses[`${String(answer.status)[0]}XX`];
    expect(declared, `${method} ${url}: status ${answer.status} is not in the document`).toBeDefined();
    const resolved = declared.$ref ? doc.components.responses.Error : declared;
    const schema = resolved.content?.['application/json']?.schema;
    if (!schema) {
      expect(answer.raw, `${method} ${url}`).toBe('');
      return;
    }
    const rebased = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"lifeboat#/components/'));
    const valid = ajv.validate(rebased, answer.body);
    expect(valid, `${method} ${url} ${answer.status}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
  }

  const asAdmin = async (method: string, url: string, body?: unknown) => {
    const answer = await call(method, url, { token: ADMIN, body });
    check(method, url, answer);
    return answer;
  };

  it('of the reading routes match their documented models', async () => {
    for (const url of [
      '/hosts',
      '/hosts/1',
      '/vms',
      `/vms/${vmId}`,
      `/vms/${vmId}/backup-config`,
      '/datastores',
      '/datastores/1',
      '/datastores/1/capacity',
      '/images',
      '/executions',
      '/jobs',
      '/users',
      '/groups',
      '/config',
      '/tokens',
    ]) {
      expect((await asAdmin('GET', url)).status, url).toBe(200);
    }
  });

  it('of the changing routes match too: a backup queued and cancelled, a job, a schedule', async () => {
    const queued = await asAdmin('POST', `/vms/${vmId}/backup`, { datastoreId: 1 });
    expect(queued.status).toBe(202);
    expect((await asAdmin('GET', `/executions/${queued.body.id}`)).status).toBe(200);
    expect((await asAdmin('POST', `/executions/${queued.body.id}/cancel`)).body.state).toBe('ABORTED');
    expect((await asAdmin('POST', `/executions/${queued.body.id}/cancel`)).status).toBe(409);
    const job = await asAdmin('POST', '/jobs', { name: 'openapi-job', vmIds: [vmId], datastoreId: 1 });
    expect(job.status).toBe(201);
    expect((await asAdmin('GET', `/jobs/${job.body.id}`)).status).toBe(200);
    // The VM is the job's now: its schedules are the job's.
    const sched = await asAdmin('POST', `/jobs/${job.body.id}/schedules`, { time: '+3600' });
    expect(sched.status, sched.raw).toBe(201);
    expect((await asAdmin('GET', `/jobs/${job.body.id}/schedules`)).status).toBe(200);
    expect((await asAdmin('DELETE', `/jobs/${job.body.id}/schedules/${sched.body.id}`)).status).toBe(204);
    expect((await asAdmin('POST', `/vms/${vmId}/schedules`, { time: '+3600', datastoreId: 1 })).status).toBe(
      409,
    );
  });

  it('of refusals are the documented { error, message }', async () => {
    expect((await asAdmin('GET', '/vms/999999')).status).toBe(404);
    expect((await asAdmin('POST', '/datastores', { name: 'x', driver: 'ftp' })).status).toBe(400);
    const anonymous = await call('GET', '/vms');
    check('GET', '/vms', anonymous);
    expect(anonymous.status).toBe(401);
  });
});
