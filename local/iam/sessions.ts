/**
 * Local mode's analog of IAM Roles Anywhere: a runner proves it is its host and gets its host's
 * session key. In AWS the proof is a certificate whose CN is the host id; here it is the host
 * credential the runner got at registration (`lbh_...`, kept in its `identity.json`), whose
 * sha256 the users table holds as principal `host:<id>`. `POST /session` with that credential as
 * bearer answers the key of the runner principal tagged with that host id
 * ({@link LocalIam.credentialsForHost}), in the `credential_process` format
 * `{ Version: 1, AccessKeyId, SecretAccessKey, Expiration }` (runner/session-credentials.ts). Anything else (no token, a user's,
 * an enrollment token, an unknown, replaced or deleted host's credential) gets 403 and nothing.
 * Served on 127.0.0.1 only; no credential nor key is ever logged.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { TABLES } from '#functions/tables.ts';
import { LOCAL_SESSION_URL, SESSION_PATH, type SessionAnswer } from '#runner/session-credentials.ts';
import type { LocalCredentials } from '../credentials.ts';
import { localTableName } from '../dynamodb.ts';
import { close, listen, sendJson } from '../http.ts';
import type { LocalIam } from './keyring.ts';

/**
 * How long an answered session is said to last. The key itself lives as long as this start of
 * local mode; a runner asks again after this (or at once when a call is refused as unknown), so
 * a deleted host's runner loses its key within this time at most.
 */
export const SESSION_SECONDS = 15 * 60;

/** A registered host a credential proves. */
export interface ProvenHost {
  id: number;
  name: string;
}

/** Finds the host whose credential hashes to `tokenHash`, if it is a current host credential. */
export type HostOfCredential = (tokenHash: string) => Promise<ProvenHost | undefined>;

/** Host credentials only: user tokens are `lb_`, enrollment tokens `lbe_` (functions/api/auth.ts). */
const HOST_CREDENTIAL = /^lbh_[A-Za-z0-9_-]{16,256}$/;

const tableOf = (key: 'users' | 'hosts') => {
  const spec = TABLES.find((t) => t.key === key);
  if (!spec) throw new Error(`functions/tables.ts has no ${key} table`);
  return localTableName(spec);
};

/**
 * The users and hosts tables of local mode read with `credentials` (the admin's): the principal
 * the token index finds must be `host:<id>` of role host, still hold that hash when read
 * consistently (the index may lag behind a replaced credential), and its host must exist.
 */
export function hostOfCredential(
  endpoint: string,
  credentials: LocalCredentials,
  region: string,
): { find: HostOfCredential; stop(): void } {
  const client = new DynamoDBClient({ endpoint, region, credentials });
  const users = tableOf('users');
  const hosts = tableOf('hosts');
  const find: HostOfCredential = async (tokenHash) => {
    const found = await client.send(
      new QueryCommand({
        TableName: users,
        IndexName: 'byToken',
        KeyConditionExpression: '#t = :t',
        ExpressionAttributeNames: { '#t': 'tokenHash' },
        ExpressionAttributeValues: { ':t': { S: tokenHash } },
      }),
    );
    for (const item of found.Items ?? []) {
      const hostId = Number(item.hostId?.N);
      const name = `host:${hostId}`;
      if (item.role?.S !== 'host' || !Number.isSafeInteger(hostId) || item.name?.S !== name) continue;
      const principal = await client.send(
        new GetItemCommand({ TableName: users, Key: { name: { S: name } }, ConsistentRead: true }),
      );
      if (principal.Item?.tokenHash?.S !== tokenHash) continue;
      const host = await client.send(
        new GetItemCommand({ TableName: hosts, Key: { id: { N: String(hostId) } }, ConsistentRead: true }),
      );
      const hostName = host.Item?.name?.S;
      if (hostName) return { id: hostId, name: hostName };
    }
    return undefined;
  };
  return { find, stop: () => client.destroy() };
}

const FORBIDDEN = {
  error: 'Forbidden',
  message: 'a current host credential (Authorization: Bearer lbh_...) is needed for a host session',
};

function bearer(req: IncomingMessage): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

/** A running session endpoint. */
export interface SessionServer {
  /** `http://127.0.0.1:<port>`: what the runners get in LIFEBOAT_LOCAL_SESSION_URL. */
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Serves the exchange on 127.0.0.1:`port` (0: any free port). `log` gets one line per answer:
 * the host id when one was proven, never the credential nor the key.
 */
export async function startSessionServer(opts: {
  port: number;
  iam: LocalIam;
  hostOf: HostOfCredential;
  log: (entry: Record<string, unknown>) => void;
  now?: () => number;
}): Promise<SessionServer> {
  const now = opts.now ?? Date.now;
  const server = createServer((req, res) => {
    // No body is read: the proof is the header. Whatever was sent is dropped.
    req.resume();
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== SESSION_PATH) {
      sendJson(res, 404, { error: 'NotFound', message: `no route ${url.pathname} (POST ${SESSION_PATH})` });
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'MethodNotAllowed', message: `POST ${SESSION_PATH}` }, { allow: 'POST' });
      return;
    }
    const token = bearer(req);
    void (async () => {
      try {
        const host =
          token && HOST_CREDENTIAL.test(token)
            ? await opts.hostOf(createHash('sha256').update(token, 'utf8').digest('hex'))
            : undefined;
        if (!host) {
          opts.log({ level: 'warn', msg: 'host session refused' });
          sendJson(res, 403, FORBIDDEN);
          return;
        }
        const key = opts.iam.credentialsForHost(host);
        const answer: SessionAnswer = {
          Version: 1,
          AccessKeyId: key.accessKeyId,
          SecretAccessKey: key.secretAccessKey,
          Expiration: new Date(now() + SESSION_SECONDS * 1000).toISOString(),
        };
        opts.log({ level: 'debug', msg: 'host session issued', hostId: host.id, hostName: host.name });
        sendJson(res, 200, answer, { 'cache-control': 'no-store' });
      } catch (err) {
        opts.log({ level: 'error', msg: 'host session failed', error: (err as Error).name });
        sendJson(res, 503, { error: 'Unavailable', message: 'the host session could not be checked now' });
      }
    })();
  });
  const port = await listen(server, opts.port);
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => close(server) };
}

/** What a runner must not inherit from local mode's environment: the functions' key. */
const NOT_FOR_RUNNERS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'] as const;

/**
 * The environment of a runner local mode starts: `env` without any AWS key (the Lambdas' is in
 * local mode's own environment), with the session endpoint in {@link LOCAL_SESSION_URL}: the
 * runner gets its host's key there, as any other host's runner does.
 */
export function runnerEnvironment(
  env: Record<string, string | undefined>,
  sessionEndpoint: string,
): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env, [LOCAL_SESSION_URL]: sessionEndpoint };
  for (const name of NOT_FOR_RUNNERS) delete out[name];
  return out;
}
