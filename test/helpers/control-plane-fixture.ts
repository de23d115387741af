/**
 * The control plane most test/functions files run on: a scratch folder holding the local secret
 * store, quiet logs, no dispatcher Lambda to invoke, DynamoDB Local and fauxqs (and the fake Step
 * Functions when asked), then, when asked, an admin, hosts, a restic datastore and the first
 * host's inventory. {@link useControlPlane} registers the hooks that start it before the file's
 * tests and stop it after; a file's own `beforeAll` runs after this one, its `afterAll` before.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { call, seedUser } from './api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal } from './dynamodb-local.ts';
import { type FakeSfn, startFakeSfn } from './fake-sfn.ts';
import { type LocalSqs, startLocalSqs } from './fauxqs.ts';
import { hostBody } from './host-key.ts';

/** What varies from one file to the next. */
/** The three state machines' ARNs, as a deployment names them (the fake Step Functions takes any). */
export const STATE_MACHINE_ENV = {
  BACKUP_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Backup',
  RESTORE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Restore',
  MAINTENANCE_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:000000000000:stateMachine:Maintenance',
} as const;

export interface ControlPlaneOptions {
  /** Names the scratch folder (`lifeboat-<name>-XXXXXX` in the temp folder). */
  name: string;
  /** The secret store: the scratch folder itself (default), or its `secrets` subfolder. */
  secrets?: 'home' | 'subfolder';
  /**
   * Variables the file sets (a string) or unsets (undefined) before the emulators start, after
   * the defaults (so a file may unset LIFEBOAT_LOG_LEVEL, say).
   */
  env?: Record<string, string | undefined>;
  /** Also start the fake Step Functions (AWS_ENDPOINT_URL_SFN). */
  sfn?: boolean;
  /** Seeds the user `admin` (role admin, group `users` unless given) with this token. */
  admin?: { token: string; group?: string };
  /** Registers these hosts (ids 1, 2... in this order) as admin, each with the test host key. */
  hosts?: string[];
  /** Creates the restic datastore `repo` (id 1) with this RESTIC_PASSWORD, as admin. */
  resticPassword?: string;
  /** Reports these domains as host 1's inventory, as admin. */
  inventory?: unknown[];
}

/** The running control plane; its fields are there from the file's own `beforeAll` on. */
export interface ControlPlane {
  /** The scratch folder (removed after the file's tests). */
  readonly home: string;
  /** The folder of the local secret store (`home` or `home/secrets`). */
  readonly secretsDir: string;
  readonly db: DynamoDbLocal;
  readonly sqs: LocalSqs;
  /** The fake Step Functions (only with `sfn: true`). */
  readonly sfn: FakeSfn;
}

/** Registers `beforeAll` / `afterAll` hooks that start and stop the control plane of `options`. */
export function useControlPlane(options: ControlPlaneOptions): ControlPlane {
  let home: string | undefined;
  let db: DynamoDbLocal | undefined;
  let sqs: LocalSqs | undefined;
  let sfn: FakeSfn | undefined;
  const secretsDir = () => (options.secrets === 'subfolder' ? join(started(home), 'secrets') : started(home));

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), `lifeboat-${options.name}-`));
    process.env.LIFEBOAT_SECRET_STORE = `local:${secretsDir()}`;
    process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
    delete process.env.DISPATCHER_FUNCTION_NAME;
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    [db, sqs, sfn] = await Promise.all([
      startDynamoDbLocal(),
      startLocalSqs(),
      options.sfn ? startFakeSfn() : undefined,
    ]);
    await seed(options);
  });
  afterAll(async () => {
    await Promise.all([db?.stop(), sqs?.stop(), sfn?.stop()]);
    if (home) await rm(home, { recursive: true, force: true });
  });

  return {
    get home() {
      return started(home);
    },
    get secretsDir() {
      return secretsDir();
    },
    get db() {
      return started(db);
    },
    get sqs() {
      return started(sqs);
    },
    get sfn() {
      return started(sfn);
    },
  };
}

/** The admin, hosts, datastore and inventory `options` ask for, in that order. */
async function seed({ admin, hosts = [], resticPassword, inventory }: ControlPlaneOptions): Promise<void> {
  if (!admin) {
    if (hosts.length > 0 || resticPassword !== undefined || inventory)
      throw new Error('useControlPlane: hosts, a datastore or an inventory need an admin');
    return;
  }
  await seedUser('admin', admin.token, 'admin', admin.group);
  const as = { token: admin.token };
  for (const name of hosts) {
    const res = await call('POST', '/hosts', { ...as, body: hostBody(name) });
    expect(res.status, res.raw).toBe(201);
  }
  if (resticPassword !== undefined) {
    const ds = await call('POST', '/datastores', {
      ...as,
      body: { name: 'repo', driver: 'restic', attributes: { RESTIC_PASSWORD: resticPassword } },
    });
    expect(ds.status, ds.raw).toBe(201);
  }
  if (inventory) {
    const res = await call('PUT', '/hosts/1/inventory', { ...as, body: { vms: inventory } });
    expect(res.status, res.raw).toBe(200);
  }
}

function started<T>(value: T | undefined): T {
  if (value === undefined)
    throw new Error('the control plane is not started (useControlPlane starts it in beforeAll)');
  return value;
}
