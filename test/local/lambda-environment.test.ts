/**
 * Each local function gets what the synthesized template gives it (handler, timeout, memory,
 * role, variables), its Refs and GetAtts resolved to local mode's names; only the AWS endpoints,
 * the credentials and the secret store are local mode's own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '#functions/manifest.ts';
import { TABLES } from '#functions/tables.ts';
import type { CfnTemplate } from '#infra/definition.ts';
import { LocalConfigFile, resolveConfig } from '#local/config.ts';
import { functionRuntimes, templateFunctions } from '#local/lambda-environment.ts';
import { cachedTemplate, machineArnOfKind, machinesOfTemplate } from '#local/stepfunctions/definitions.ts';

const config = resolveConfig(LocalConfigFile.parse({ heartbeatSeconds: 7, maxBackupsHost: 3 }), 9100);
let dir: string;
let template: CfnTemplate;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-fnenv-'));
  ({ template } = await cachedTemplate(config, join(dir, 'template.json')));
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

const services = {
  region: 'us-east-1',
  secretsDir: '/h/secrets',
  endpoints: { DYNAMODB: 'http://127.0.0.1:9101', SCHEDULER: 'http://127.0.0.1:9105' },
};
const start = { accessKeyId: 'LBLOCAL0123456789ABCDEF', secretAccessKey: 's'.repeat(43) };

describe('functions from the template', () => {
  it('finds every manifest function with its handler, timeout and role', () => {
    const fns = templateFunctions(template, 'us-east-1');
    expect(fns.map((f) => f.id).sort()).toEqual(FUNCTIONS.map((f) => f.id).sort());
    for (const fn of fns) {
      const spec = FUNCTIONS.find((f) => f.id === fn.id);
      expect(fn).toMatchObject({
        handler: 'index.handler',
        timeoutSeconds: spec?.timeoutSeconds,
        memoryMb: 256,
      });
      expect(fn.roleLogicalId).toMatch(new RegExp(`^${fn.id}ServiceRole[0-9A-F]{8}$`));
    }
  });

  it("resolves the template's variables to local names: tables, machines, queue, roles, functions", () => {
    const api = templateFunctions(template, 'us-east-1').find((f) => f.id === 'Api');
    const machines = machinesOfTemplate(template, 'us-east-1');
    for (const table of TABLES) expect(api?.environment[table.envVar]).toBe(`lifeboat-${table.key}`);
    expect(api?.environment).toMatchObject({
      BACKUP_STATE_MACHINE_ARN: machineArnOfKind(machines, 'Backup'),
      RESTORE_STATE_MACHINE_ARN: machineArnOfKind(machines, 'Restore'),
      MAINTENANCE_STATE_MACHINE_ARN: machineArnOfKind(machines, 'Maintenance'),
      DISPATCHER_FUNCTION_NAME: 'lifeboat-Dispatcher',
      SCHEDULE_TARGET_ARN: 'arn:aws:lambda:us-east-1:000000000000:function:lifeboat-Dispatcher',
      SCHEDULER_ROLE_ARN: expect.stringMatching(/^arn:aws:iam::000000000000:role\/SchedulingVmScheduleRole/),
      HOST_DEAD_LETTER_QUEUE_ARN: 'arn:aws:sqs:us-east-1:000000000000:lifeboat-dlq-hosts',
      HOST_QUEUE_PREFIX: 'lifeboat-host-',
      SCHEDULE_GROUP: 'lifeboat',
      HEARTBEAT_SECONDS: '7',
      MAX_BACKUPS_HOST: '3',
      LIFEBOAT_SECRET_STORE: 'secretsmanager',
    });
    // The dispatcher is not told its own name (the stack avoids the cycle): nor is it locally.
    const dispatcher = templateFunctions(template, 'us-east-1').find((f) => f.id === 'Dispatcher');
    expect(dispatcher?.environment.DISPATCHER_FUNCTION_NAME).toBeUndefined();
  });

  it("builds each worker's environment: template variables, local endpoints, the role's key", () => {
    const roles: string[] = [];
    const runtimes = functionRuntimes({
      functions: templateFunctions(template, 'us-east-1'),
      bundles: new Map(FUNCTIONS.map((f) => [f.id, { file: `/b/${f.id}/index.mjs` }])),
      services,
      credentialsFor: (role, id) => {
        roles.push(`${id}:${role}`);
        return { ...start, accessKeyId: `LBLOCAL${id.toUpperCase()}` };
      },
    });
    const api = runtimes.find((r) => r.id === 'Api');
    expect(api?.init).toMatchObject({
      file: '/b/Api/index.mjs',
      handler: 'handler',
      functionName: 'lifeboat-Api',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:lifeboat-Api',
      memoryLimitInMB: '256',
    });
    expect(api?.env).toMatchObject({
      TABLE_VMS: 'lifeboat-vms',
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9101',
      AWS_ENDPOINT_URL_SCHEDULER: 'http://127.0.0.1:9105',
      AWS_ACCESS_KEY_ID: 'LBLOCALAPI',
      AWS_SECRET_ACCESS_KEY: start.secretAccessKey,
      AWS_LAMBDA_FUNCTION_NAME: 'lifeboat-Api',
      _HANDLER: 'index.handler',
      // No Secrets Manager locally: the local store stands in for it.
      LIFEBOAT_SECRET_STORE: 'local:/h/secrets',
      NODE_OPTIONS: '--enable-source-maps',
    });
    // Nothing of the developer's AWS setup reaches a function.
    expect(
      Object.keys(api?.env ?? {}).filter((k) => /^AWS_(PROFILE|SESSION_TOKEN|ENDPOINT_URL)$/.test(k)),
    ).toEqual([]);
    expect(roles).toContain(
      `Api:${templateFunctions(template, 'us-east-1').find((f) => f.id === 'Api')?.roleLogicalId}`,
    );
    expect(runtimes.find((r) => r.id === 'AdmitBackup')?.env.SCHEDULE_GROUP).toBeUndefined();
  });

  it('refuses a template whose Handler names another file than the bundle, or lacks a function', () => {
    const functions = templateFunctions(template, 'us-east-1');
    const bundles = new Map(FUNCTIONS.map((f) => [f.id, { file: `/b/${f.id}/index.mjs` }]));
    const credentialsFor = () => start;
    const renamed = functions.map((f) => (f.id === 'Api' ? { ...f, handler: 'main.handler' } : f));
    expect(() => functionRuntimes({ functions: renamed, bundles, services, credentialsFor })).toThrow(
      'Api: Handler main.handler names no export of /b/Api/index.mjs',
    );
    const partial = functions.filter((f) => f.id !== 'Release');
    expect(() => functionRuntimes({ functions: partial, bundles, services, credentialsFor })).toThrow(
      'the template has no function Release',
    );
  });
});

describe('notifications in local mode', () => {
  it('has no SNS topic (an empty NOTIFY_TOPIC_ARN) and posts to the configured webhook', async () => {
    const withHook = resolveConfig(
      LocalConfigFile.parse({ notifyWebhookUrl: 'http://127.0.0.1:9999/hook' }),
      9100,
    );
    const { template: hooked } = await cachedTemplate(withHook, join(dir, 'hooked.json'));
    const release = templateFunctions(hooked, 'us-east-1').find((f) => f.id === 'Release');
    expect(release?.environment).toMatchObject({
      NOTIFY_TOPIC_ARN: '',
      NOTIFY_WEBHOOK_URL: 'http://127.0.0.1:9999/hook',
    });
    const plain = templateFunctions(template, 'us-east-1').find((f) => f.id === 'Dispatcher');
    expect(plain?.environment.NOTIFY_TOPIC_ARN).toBe('');
    expect(plain?.environment.NOTIFY_WEBHOOK_URL).toBeUndefined();
    expect(() => LocalConfigFile.parse({ notifyWebhookUrl: 'file:///etc/passwd' })).toThrow();
  }, 120_000);
});
