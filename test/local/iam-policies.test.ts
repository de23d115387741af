/**
 * Local mode's IAM from the real synthesized template (the one `npm start` runs): each role's
 * policies resolved to local ARNs, and what the independent evaluator then allows each
 * principal: the runner of a host only its own queue and progress keys, a step function only
 * the tables its policy names, a schedule role only its target, the API only the schedule role.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS as MANIFEST } from '#functions/manifest.ts';
import type { CfnTemplate } from '#infra/definition.ts';
import { LocalConfigFile, resolveConfig } from '#local/config.ts';
import { LOCAL_SCHEDULE_ROLE_ARN } from '#local/env.ts';
import type { Check, Principal } from '#local/iam/evaluate.ts';
import { FUNCTIONS, LocalIam } from '#local/iam/keyring.ts';
import { templatePolicies } from '#local/iam/template.ts';
import { cachedTemplate } from '#local/stepfunctions/definitions.ts';

const R = 'us-east-1';
const A = '000000000000';
const table = (key: string) => `arn:aws:dynamodb:${R}:${A}:table/lifeboat-${key}`;
const PROGRESS_FIELDS = ['id', 'phase', 'bytesDone', 'bytesTotal', 'expiresAt'];

let template: CfnTemplate;
let dir: string;
let iam: LocalIam;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-iam-'));
  ({ template } = await cachedTemplate(resolveConfig(LocalConfigFile.parse({})), join(dir, 'template.json')));
  iam = new LocalIam({ enforce: true, region: R });
  iam.loadTemplate(template, R);
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The principal signing with `credentials`. */
const principal = (credentials: { accessKeyId: string }): Principal => {
  const found = iam.lookup(credentials.accessKeyId)?.principal;
  if (!found) throw new Error('unknown key');
  return found;
};
const role = (fn: string) => principal(iam.credentialsForFunction(fn));
const allows = async (who: Principal, check: Check) => (await iam.authorize(who, [check])) === undefined;

describe('policies resolved from the synthesized template', () => {
  it('gives every function and state machine its role, every intrinsic resolved to a local ARN', () => {
    const policies = templatePolicies(template, R);
    expect(Object.keys(policies.functionRoles).sort()).toEqual(MANIFEST.map((f) => f.id).sort());
    expect(Object.keys(policies.machineRoles).sort()).toEqual([
      'Lifeboat-Backup',
      'Lifeboat-Maintenance',
      'Lifeboat-Restore',
    ]);
    const text = JSON.stringify(policies);
    expect(text).not.toMatch(/"(Ref|Fn::[A-Za-z]+)"/);
    const api =
      policies.roles[policies.functionRoles.Api ?? '']?.policies.flatMap((p) => p.document.Statement) ?? [];
    expect(JSON.stringify(api)).toContain(table('users'));
    expect(policies.runnerHostTag).toBe('x509Subject/CN');
    expect(JSON.stringify(policies.runner?.document)).toContain(
      `arn:aws:sqs:${R}:${A}:lifeboat-host-\${aws:PrincipalTag/x509Subject/CN}`,
    );
  });
});

describe('what the evaluator allows each principal', () => {
  it('the runner of host 3: its own queue and progress keys only, with the progress fields, nothing read back', async () => {
    const runner = principal(iam.credentialsForHost({ name: 'kvm-3', id: 3 }));
    const queue = (id: string) => `arn:aws:sqs:${R}:${A}:lifeboat-host-${id}`;
    expect(await allows(runner, { action: 'sqs:ReceiveMessage', resource: queue('3') })).toBe(true);
    expect(await allows(runner, { action: 'sqs:ReceiveMessage', resource: queue('4') })).toBe(false);
    expect(await allows(runner, { action: 'sqs:ReceiveMessage', resource: queue('31') })).toBe(false);
    expect(await allows(runner, { action: 'sqs:SendMessage', resource: queue('3') })).toBe(false);
    const progress = (
      key: string,
      attributes = PROGRESS_FIELDS,
      extra: Record<string, string> = {},
    ): Check => ({
      action: 'dynamodb:UpdateItem',
      resource: table('progress'),
      context: { 'dynamodb:LeadingKeys': [key], 'dynamodb:Attributes': attributes, ...extra },
    });
    expect(await allows(runner, progress('3/exec-1'))).toBe(true);
    expect(await allows(runner, progress('4/exec-1'))).toBe(false);
    expect(await allows(runner, progress('31/exec-1'))).toBe(false);
    expect(await allows(runner, progress('3/exec-1', [...PROGRESS_FIELDS, 'owner']))).toBe(false);
    expect(
      await allows(runner, progress('3/exec-1', PROGRESS_FIELDS, { 'dynamodb:ReturnValues': 'ALL_NEW' })),
    ).toBe(false);
    for (const key of ['executions', 'datastores', 'hosts', 'users']) {
      expect(await allows(runner, { action: 'dynamodb:GetItem', resource: table(key) })).toBe(false);
    }
    expect(await allows(runner, { action: 'states:SendTaskSuccess', resource: '*' })).toBe(true);
  });

  it('a runner whose host id is not known yet matches none of its tagged grants', async () => {
    const runner = principal(iam.credentialsForHost({ name: 'not-registered' }));
    expect(await allows(runner, { action: 'states:SendTaskHeartbeat', resource: '*' })).toBe(false);
  });

  it('a host registered again under an old name gets a new key for its new id; the old key stops working', async () => {
    const old = iam.credentialsForHost({ name: 'kvm-re', id: 7 });
    expect(iam.credentialsForHost({ name: 'kvm-re', id: 7 }).accessKeyId).toBe(old.accessKeyId);
    const renewed = iam.credentialsForHost({ name: 'kvm-re', id: 8 });
    expect(renewed.accessKeyId).not.toBe(old.accessKeyId);
    expect(iam.lookup(old.accessKeyId)).toBeUndefined();
    const queue = (id: string) => `arn:aws:sqs:${R}:${A}:lifeboat-host-${id}`;
    const runner = principal(renewed);
    expect(await allows(runner, { action: 'sqs:ReceiveMessage', resource: queue('8') })).toBe(true);
    expect(await allows(runner, { action: 'sqs:ReceiveMessage', resource: queue('7') })).toBe(false);
  });

  it('datastore secrets: only the steps that seal them may read them, never a runner nor the dispatcher', async () => {
    const secret: Check = {
      action: 'secretsmanager:GetSecretValue',
      resource: `arn:aws:secretsmanager:${R}:${A}:secret:lifeboat/datastore-100-AbCdEf`,
    };
    for (const step of ['AdmitBackup', 'AdmitRestore', 'AdmitMaintenance']) {
      expect(await allows(role(step), secret), step).toBe(true);
    }
    for (const fn of ['Dispatcher', 'CommitBackup', 'Release', 'Authorizer']) {
      expect(await allows(role(fn), secret), fn).toBe(false);
    }
    const runner = principal(iam.credentialsForHost({ name: 'kvm-secrets', id: 5 }));
    expect(await allows(runner, secret)).toBe(false);
    expect(await allows(runner, { ...secret, action: 'secretsmanager:ListSecrets', resource: '*' })).toBe(
      false,
    );
    // Outside the lifeboat/ prefix, not even the sealing steps.
    expect(
      await allows(role('AdmitBackup'), {
        ...secret,
        resource: `arn:aws:secretsmanager:${R}:${A}:secret:other-1`,
      }),
    ).toBe(false);
  });

  it('a step function writes the tables its policy names, never users or progress', async () => {
    const admit = role('AdmitBackup');
    const put = (key: string): Check => ({ action: 'dynamodb:PutItem', resource: table(key) });
    expect(await allows(admit, put('executions'))).toBe(true);
    expect(await allows(admit, put('users'))).toBe(false);
    expect(await allows(admit, put('progress'))).toBe(false);
    expect(
      await allows(role('Release'), {
        action: 'lambda:InvokeFunction',
        resource: `arn:aws:lambda:${R}:${A}:function:lifeboat-Dispatcher`,
      }),
    ).toBe(true);
    expect(
      await allows(role('MarkFailed'), {
        action: 'lambda:InvokeFunction',
        resource: `arn:aws:lambda:${R}:${A}:function:lifeboat-Dispatcher`,
      }),
    ).toBe(false);
  });

  it('every function that wakes the dispatcher may invoke it, and only those', async () => {
    // functions/wake.ts callers: the API (enqueue), Release and job progress, CommitBackup
    // (KEEP_LAST deletes), CommitMaintenance (a flatten's merged backups).
    const dispatcher = `arn:aws:lambda:${R}:${A}:function:lifeboat-Dispatcher`;
    const wakers = [];
    for (const spec of MANIFEST) {
      if (await allows(role(spec.id), { action: 'lambda:InvokeFunction', resource: dispatcher }))
        wakers.push(spec.id);
    }
    expect(wakers.sort()).toEqual(['Api', 'CommitBackup', 'CommitMaintenance', 'Release']);
  });

  it('a schedule role invokes only its target', async () => {
    const dispatcher = `arn:aws:lambda:${R}:${A}:function:lifeboat-Dispatcher`;
    expect(await iam.authorizeScheduleTarget(LOCAL_SCHEDULE_ROLE_ARN, dispatcher)).toBeUndefined();
    expect(
      await iam.authorizeScheduleTarget(
        LOCAL_SCHEDULE_ROLE_ARN,
        `arn:aws:lambda:${R}:${A}:function:lifeboat-Api`,
      ),
    ).toMatchObject({
      action: 'lambda:InvokeFunction',
    });
    expect(await iam.authorizeScheduleTarget(`arn:aws:iam::${A}:role/Nobody`, dispatcher)).toBeDefined();
  });

  it('the API manages schedules of its group and passes only the schedule role, only to Scheduler', async () => {
    const api = role('Api');
    const schedule = (group: string) => `arn:aws:scheduler:${R}:${A}:schedule/${group}/vm-1`;
    expect(await allows(api, { action: 'scheduler:CreateSchedule', resource: schedule('lifeboat') })).toBe(
      true,
    );
    expect(await allows(api, { action: 'scheduler:CreateSchedule', resource: schedule('default') })).toBe(
      false,
    );
    const pass = (resource: string, service: string): Check => ({
      action: 'iam:PassRole',
      resource,
      context: { 'iam:PassedToService': service },
    });
    expect(await allows(api, pass(LOCAL_SCHEDULE_ROLE_ARN, 'scheduler.amazonaws.com'))).toBe(true);
    expect(await allows(api, pass(LOCAL_SCHEDULE_ROLE_ARN, 'lambda.amazonaws.com'))).toBe(false);
    expect(await allows(api, pass(`arn:aws:iam::${A}:role/Other`, 'scheduler.amazonaws.com'))).toBe(false);
  });

  it('the in-process functions hold every function role together; the admin everything', async () => {
    const functions = principal(iam.credentialsFor(FUNCTIONS));
    expect(await allows(functions, { action: 'dynamodb:PutItem', resource: table('users') })).toBe(true);
    expect(await allows(functions, { action: 'dynamodb:PutItem', resource: table('progress') })).toBe(false);
    expect(await allows(principal(iam.admin), { action: 'dynamodb:CreateTable', resource: table('x') })).toBe(
      true,
    );
  });

  it('LIFEBOAT_LOCAL_IAM=off turns enforcement off', async () => {
    const off = new LocalIam({ enforce: false });
    off.loadTemplate(template, R);
    const runner = off.lookup(off.credentialsForHost({ name: 'kvm-3', id: 3 }).accessKeyId)
      ?.principal as Principal;
    expect(
      await off.authorize(runner, [{ action: 'dynamodb:GetItem', resource: table('executions') }]),
    ).toBeUndefined();
  });
});
