/**
 * Local mode's runner enrollment with the real pieces in one process: the supervisor's
 * enrollment written straight into DynamoDB Local's tables (local/admin.ts), the runner's
 * registration code (runner/register.ts) and the API handler it talks to. The runner's first
 * start registers with the token, later starts use its credential, and a runner folder that
 * outlived its home's data is enrolled again.
 */
import { stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '#functions/repo/users.ts';
import { TABLES } from '#functions/tables.ts';
import { enrollLocalRunner } from '#local/admin.ts';
import { ensureTables, localDynamoClient, localTableName } from '#local/dynamodb.ts';
import { resetClients } from '#platform/aws.ts';
import { ApiAnswerError, type ApiConnector } from '#runner/api-client.ts';
import { hostKeyPath, readIdentity } from '#runner/identity.ts';
import { silentLogger } from '#runner/log.ts';
import { connectHost } from '#runner/register.ts';
import { tempDir } from '../../runner/testing/fakes.ts';
import { call } from '../helpers/api-events.ts';
import { type DynamoDbLocal, startDynamoDbLocal, useLocalCredentials } from '../helpers/dynamodb-local.ts';
import { type LocalSqs, startLocalSqs } from '../helpers/fauxqs.ts';

let db: DynamoDbLocal;
let sqs: LocalSqs;
let ddb: ReturnType<typeof localDynamoClient>;
let stateDir: string;
let removeStateDir: () => Promise<void>;

beforeAll(async () => {
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  [db, sqs] = await Promise.all([startDynamoDbLocal(), startLocalSqs()]);
  // Local mode's own table names, as the supervisor writes them.
  ddb = localDynamoClient(db.endpoint, useLocalCredentials(), process.env.AWS_REGION);
  await ensureTables(ddb);
  for (const spec of TABLES) process.env[spec.envVar] = localTableName(spec);
  resetClients();
  ({ dir: stateDir, remove: removeStateDir } = await tempDir());
});
afterAll(async () => {
  ddb?.destroy();
  await Promise.all([db?.stop(), sqs?.stop()]);
  await removeStateDir?.();
});

/** The runner's API client, through the API handler in this process. */
const inProcess: ApiConnector = (bearer) => {
  const request = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const answer = await call(method, path, { token: bearer, body });
    if (answer.status >= 300) {
      throw new ApiAnswerError(answer.status, answer.body.error, `${method} ${path}: ${answer.body.message}`);
    }
    return answer.body as T;
  };
  return {
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body),
    put: (path, body) => request('PUT', path, body),
  };
};

const start = (token: string | undefined) =>
  connectHost(inProcess, {
    name: 'kvm-local',
    stateDir,
    enrollToken: async () => token,
    runnerVersion: '0.0.0-test',
    log: silentLogger,
  });

describe('the local runner', () => {
  let firstToken: string | undefined;
  let hostId: number;

  it('is enrolled at its first start and registers with the token', async () => {
    firstToken = await enrollLocalRunner(ddb, { stateDir, hostName: 'kvm-local' });
    expect(firstToken).toMatch(/^lbe_/);
    const record = await users.get('enroll:kvm-local');
    expect(record).toMatchObject({ role: 'host', group: 'hosts', hostName: 'kvm-local' });
    expect(Date.parse(record.enrollUntil ?? '') - Date.now()).toBeGreaterThan(3500_000);

    const { host } = await start(firstToken);
    hostId = host.id;
    expect(host.name).toBe('kvm-local');
    expect((await readIdentity(stateDir))?.hostId).toBe(hostId);
    expect((await stat(hostKeyPath(stateDir))).mode & 0o777).toBe(0o600);
    expect(await users.find('enroll:kvm-local')).toBeUndefined();
  });

  it('is not enrolled again while its credential is good, and starts with it', async () => {
    expect(await enrollLocalRunner(ddb, { stateDir, hostName: 'kvm-local' })).toBeUndefined();
    // The harness restarts it with the environment it had: the spent token is never needed.
    const { host, api } = await start(firstToken);
    expect(host.id).toBe(hostId);
    await api.put(`/hosts/${hostId}/inventory`, { vms: [] });
    // And its credential is a host's, not an admin's.
    await expect(api.get('/vms')).rejects.toThrow(`GET /vms: host ${hostId} may not GET /vms`);
  });

  it('is enrolled again when its home lost the credential (a new home, the same runner folder)', async () => {
    await users.delete(`host:${hostId}`);
    const token = await enrollLocalRunner(ddb, { stateDir, hostName: 'kvm-local' });
    expect(token).toMatch(/^lbe_/);
    const { host } = await start(token);
    expect(host.id).toBe(hostId);
    expect(await enrollLocalRunner(ddb, { stateDir, hostName: 'kvm-local' })).toBeUndefined();
  });
});
