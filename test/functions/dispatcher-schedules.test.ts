/**
 * Scheduled actions and backup jobs through the API handler and the dispatcher's firing, on
 * DynamoDB Local with a clock the test controls: bad schedules are refused and change nothing,
 * a repeating schedule fires once per run and stops at its end, a job VM refuses single backups.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { fireDueSchedules } from '#functions/dispatcher/schedules.ts';
import { executions } from '#functions/repo/executions.ts';
import { dueSchedules, schedules } from '#functions/repo/schedules.ts';
import { vms } from '#functions/repo/vms.ts';
import { handler as release } from '#functions/tasks/release.ts';
import { call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const admin = { token: 'admin-token-schedules' };
const user = { token: 'user-token-schedules' };

const domain = (name: string) => ({
  domain: name,
  state: 'RUNNING',
  disks: [{ id: 0, target: 'vda', source: `/images/${name}.qcow2`, format: 'qcow2', size: 1000 }],
  nics: [],
  template: `<domain><name>${name}</name></domain>`,
});

useControlPlane({
  name: 'sched',
  env: { SCHEDULE_GROUP: undefined },
  admin,
  hosts: ['kvm-1'],
  resticPassword: 'pw',
  inventory: ['a', 'b', 'c', 'd', 'e'].map((n) => domain(`vm-${n}`)),
});
beforeAll(async () => {
  await seedUser('bob', user.token, 'user');
});

const allSchedules = async () => (await schedules.list()).length;

describe('scheduled actions', () => {
  it('refuses bad schedules with a clear 400 and creates nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [
        { datastoreId: 1, time: 'now', repeat: 'fortnightly' },
        'repeat: must be hourly, daily, weekly, monthly or cron',
      ],
      [{ datastoreId: 1, time: 'now', repeat: 'cron(0 10 * * *)' }, 'must have 6 fields'],
      [{ datastoreId: 1, time: '2020-01-01T00:00:00Z' }, 'time: 2020-01-01T00:00:00Z is in the past'],
      [{ time: '+60' }, 'datastoreId: required for a VM backup'],
      [{ datastoreId: 1, time: '+60', every: 5 }, 'every'],
    ];
    for (const [body, message] of cases) {
      const res = await call('POST', '/vms/1/schedules', { ...admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe('ValidationError');
      expect(res.body.message).toContain(message);
    }
    expect(await allSchedules()).toBe(0);
    const missing = await call('POST', '/vms/99/schedules', {
      ...admin,
      body: { datastoreId: 1, time: 'now' },
    });
    expect(missing.body).toEqual({ error: 'NotFound', message: 'VM 99 does not exist' });
  });

  it('a repeating schedule fires once per run, then stops at its count and leaves the due list', async () => {
    const created = await call('POST', '/vms/1/schedules', {
      ...admin,
      body: { datastoreId: 1, time: '+60', repeat: 'hourly', end: 2 },
    });
    expect(created.status).toBe(201);
    const first = new Date(created.body.nextRunAt);
    expect(created.body.nextRuns).toEqual([
      first.toISOString(),
      new Date(first.getTime() + 3_600_000).toISOString(),
    ]);
    expect(created.body.description).toMatch(/^hourly from .*, 2 runs$/);
    const listed = await call('GET', '/vms/1/schedules', admin);
    expect(listed.body.items.map((s: { id: number }) => s.id)).toEqual([created.body.id]);

    // Not due yet: nothing fires.
    expect(await fireDueSchedules(new Date(first.getTime() - 1000))).toEqual([]);
    expect(await fireDueSchedules(first)).toEqual([created.body.id]);
    // The same run again (a second dispatcher, a retried Lambda): nothing more.
    expect(await fireDueSchedules(first)).toEqual([]);
    const afterFirst = await schedules.get(created.body.id);
    expect(afterFirst.runs).toBe(1);
    const execution = await executions.get(afterFirst.lastExecutionId ?? '');
    expect(execution).toMatchObject({ kind: 'backup', vmId: 1, datastoreId: 1, state: 'QUEUED' });
    expect(execution.params.scheduleId).toBe(created.body.id);

    // The run an hour later finds the VM's first backup still queued: spent, reason recorded.
    const second = new Date(first.getTime() + 3_600_000);
    expect(await fireDueSchedules(second)).toEqual([created.body.id]);
    const over = await schedules.get(created.body.id);
    expect(over).toMatchObject({ runs: 2 });
    expect(over.lastError).toContain('already has a backup queued');
    expect(over.nextRunAt).toBeUndefined();
    expect((await dueSchedules(new Date(second.getTime() + 10 * 3_600_000))).map((s) => s.id)).not.toContain(
      created.body.id,
    );
    const shown = await call('GET', '/vms/1/schedules', admin);
    expect(shown.body.items[0].nextRuns).toEqual([]);

    const removed = await call('DELETE', `/vms/1/schedules/${created.body.id}`, admin);
    expect(removed.status).toBe(204);
    expect(await allSchedules()).toBe(0);
  });
});

describe('backup jobs', () => {
  it('refuses a user priority above 49 and a VM listed twice', async () => {
    const high = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'x', vmIds: [2], datastoreId: 1, priority: 50 },
    });
    expect(high.status).toBe(201);
    expect((await call('DELETE', `/jobs/${high.body.id}`, admin)).status).toBe(204);
    const byUser = await call('POST', '/jobs', {
      ...user,
      body: { name: 'x', vmIds: [2], datastoreId: 1, priority: 50 },
    });
    expect(byUser.status).toBe(403);
    expect(byUser.body.message).toBe('priority above 49 is for admins');
    const twice = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'x', vmIds: [2, 2], datastoreId: 1 },
    });
    expect(twice.status).toBe(400);
    expect(twice.body.message).toBe('vmIds: VM 2 is listed twice');
    const badConfig = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'x', vmIds: [2], datastoreId: 1, config: { KEEP_LAST: 'many' } },
    });
    expect(badConfig.status).toBe(400);
    expect(await call('GET', '/jobs', admin)).toMatchObject({ body: { items: [] } });
  });

  it('a VM belongs to one job at a time: BACKUP_JOB_ID marks it, a second job is refused, a change or delete frees it', async () => {
    const jobOf = async (vmId: number) =>
      (await call('GET', `/vms/${vmId}`, admin)).body.backups.BACKUP_CONFIG.BACKUP_JOB_ID;
    const first = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'a', vmIds: [2, 3], datastoreId: 1 },
    });
    expect(first.status).toBe(201);
    expect([await jobOf(2), await jobOf(3)]).toEqual([String(first.body.id), String(first.body.id)]);

    const second = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'b', vmIds: [4, 3], datastoreId: 1 },
    });
    expect(second.status).toBe(409);
    expect(second.body.message).toBe(`VM 3 already belongs to backup job ${first.body.id}`);
    // Nothing changed: VM 4 is free, no job b.
    expect(await jobOf(4)).toBeUndefined();
    expect((await call('GET', '/jobs', admin)).body.items.map((j: { name: string }) => j.name)).toEqual([
      'a',
    ]);

    // VM 3 leaves job a: free again, and job b can take it.
    expect((await call('PATCH', `/jobs/${first.body.id}`, { ...admin, body: { vmIds: [2] } })).status).toBe(
      200,
    );
    expect(await jobOf(3)).toBeUndefined();
    const third = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'b', vmIds: [4, 3], datastoreId: 1 },
    });
    expect(third.status).toBe(201);
    expect(await jobOf(3)).toBe(String(third.body.id));

    // A stale mark (its job gone without freeing the VM) does not hold the VM.
    await vms.update(5, { 'backups.BACKUP_CONFIG.BACKUP_JOB_ID': '999' });
    const fourth = await call('POST', '/jobs', { ...admin, body: { name: 'c', vmIds: [5], datastoreId: 1 } });
    expect(fourth.status).toBe(201);
    expect(await jobOf(5)).toBe(String(fourth.body.id));

    for (const id of [first.body.id, third.body.id, fourth.body.id]) {
      expect((await call('DELETE', `/jobs/${id}`, admin)).status).toBe(204);
    }
    expect([await jobOf(2), await jobOf(3), await jobOf(4), await jobOf(5)]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('a sequential job queues one VM at a time in order; its VMs refuse single backups', async () => {
    const created = await call('POST', '/jobs', {
      ...admin,
      body: {
        name: 'nightly',
        vmIds: [4, 2, 3],
        datastoreId: 1,
        execution: 'sequential',
        config: { KEEP_LAST: 3 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ execution: 'SEQUENTIAL', config: { KEEP_LAST: '3' }, priority: 0 });
    const jobId = created.body.id;
    const single = await call('POST', '/vms/2/backup', { ...admin, body: { datastoreId: 1 } });
    expect(single.status).toBe(409);
    expect(single.body.message).toBe(
      `VM 2 belongs to backup job ${jobId}: back it up with the job (lifeboat backupjob backup ${jobId})`,
    );

    const run = await call('POST', `/jobs/${jobId}/backup`, admin);
    expect(run.status).toBe(202);
    expect(run.body.executions.map((e: { vmId: number }) => e.vmId)).toEqual([4]);
    expect(run.body.job).toMatchObject({ outdatedVms: [2, 3], backingUpVms: [4] });
    expect((await call('POST', `/jobs/${jobId}/backup`, admin)).status).toBe(409);

    // The VM 4 backup ends (Release): VM 2 is queued next.
    const ex4 = run.body.executions[0].id;
    await executions.update(ex4, { state: 'RUNNING', executionArn: 'arn:x' });
    await release({ executionId: ex4, jobId });
    const job = (await call('GET', `/jobs/${jobId}`, admin)).body;
    expect(job).toMatchObject({ outdatedVms: [3], backingUpVms: [2], updatedVms: [4] });
  });

  it('a job schedule runs the job: its first VM queued, the run recorded on the schedule', async () => {
    const created = await call('POST', '/jobs', {
      ...admin,
      body: { name: 'weekly', vmIds: [5], datastoreId: 1 },
    });
    const jobId = created.body.id;
    const withDatastore = await call('POST', `/jobs/${jobId}/schedules`, {
      ...admin,
      body: { datastoreId: 1, time: '+60' },
    });
    expect(withDatastore.status).toBe(400);
    expect(withDatastore.body.message).toBe('datastoreId: a backup job uses its own datastore');
    const schedule = await call('POST', `/jobs/${jobId}/schedules`, {
      ...admin,
      body: { time: '+60', repeat: 'daily' },
    });
    expect(schedule.status).toBe(201);
    const at = new Date(schedule.body.nextRunAt);
    expect(await fireDueSchedules(at)).toEqual([schedule.body.id]);
    const job = (await call('GET', `/jobs/${jobId}`, admin)).body;
    expect(job).toMatchObject({ backingUpVms: [5], outdatedVms: [] });
    const fired = await schedules.get(schedule.body.id);
    expect(fired.runs).toBe(1);
    expect(fired.nextRunAt).toBe(new Date(at.getTime() + 86_400_000).toISOString());
    expect((await executions.get(fired.lastExecutionId ?? '')).vmId).toBe(5);
    // Deleting the job deletes its schedules.
    await executions.update(fired.lastExecutionId ?? '', { state: 'RUNNING', executionArn: 'arn:y' });
    await release({ executionId: fired.lastExecutionId, jobId });
    expect((await call('DELETE', `/jobs/${jobId}`, admin)).status).toBe(204);
    expect(await schedules.find(schedule.body.id)).toBeUndefined();
  });
});
