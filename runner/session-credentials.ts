/**
 * The runner's AWS credentials in local mode, as IAM Roles Anywhere gives them in AWS: the
 * runner proves it is its host and gets its host's session key. Local mode's session endpoint
 * (local/iam/sessions.ts; its URL in {@link LOCAL_SESSION_URL}) takes the host credential of
 * `<stateDir>/identity.json` as bearer and answers the key of the runners' policy tagged with
 * this host's id, in the `credential_process` format. No AWS key is ever in the runner's
 * environment: without an identity (before registration) there is no session at all.
 *
 * The key is kept until 6 minutes before its expiration (the SDK itself treats one with less
 * than 5 left as expired), and fetched again at once when an endpoint does not know it (local
 * mode restarted with new keys): {@link hostSessionClients} retries such a call once.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type {
  AwsCredentialIdentity,
  AwsCredentialIdentityProvider,
  InitializeMiddleware,
  MetadataBearer,
  MiddlewareStack,
} from '@smithy/types';
import { z } from 'zod';
import { ValidationError } from '#core/errors.ts';
import { region } from '#platform/aws.ts';
import { ApiUnavailable, NotEnrolled } from './errors.ts';
import { identityPath, readIdentity } from './identity.ts';

/** Where local mode's session endpoint is (set by local mode for the runners it knows of). */
export const LOCAL_SESSION_URL = 'LIFEBOAT_LOCAL_SESSION_URL';

/** The path of the exchange on that endpoint. */
export const SESSION_PATH = '/session';

/** The endpoint's answer: AWS's `credential_process` output, version 1. */
export const SessionAnswer = z.object({
  Version: z.literal(1),
  AccessKeyId: z.string().min(1),
  SecretAccessKey: z.string().min(1),
  SessionToken: z.string().min(1).optional(),
  Expiration: z.iso.datetime({ offset: true }).optional(),
});
export type SessionAnswer = z.infer<typeof SessionAnswer>;

/** Kept until this long before its expiration: more than the SDK's own 5 minutes. */
const REFRESH_BEFORE_MS = 6 * 60_000;

/** Errors of an endpoint that does not know (or no longer knows) the key a call was signed with. */
const STALE_KEY_ERRORS = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
]);

/** A credentials provider that can be told its key went stale. */
export interface SessionCredentials extends AwsCredentialIdentityProvider {
  /** Forget the key: the next call asks the endpoint again. */
  invalidate(): void;
}

/**
 * The session endpoint URL from `value` (LIFEBOAT_LOCAL_SESSION_URL): http(s) on a loopback
 * address only, since the host credential travels to it in clear. Undefined when unset.
 */
export function parseSessionUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(`runner setting ${LOCAL_SESSION_URL}: not a URL`);
  }
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (!['http:', 'https:'].includes(url.protocol) || !loopback) {
    throw new ValidationError(
      `runner setting ${LOCAL_SESSION_URL}: must be http://127.0.0.1:PORT (local mode's own endpoint, loopback only)`,
    );
  }
  return url.origin;
}

/**
 * The provider of this host's session key from the endpoint at `url`, proving the host with the
 * credential in `stateDir`'s identity (read at each fetch: a runner that registers again uses its
 * new one). Concurrent callers share one request.
 */
export function hostSessionCredentials(opts: {
  url: string;
  stateDir: string;
  fetch?: typeof fetch;
  now?: () => number;
}): SessionCredentials {
  const doFetch = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  let cached: { identity: AwsCredentialIdentity; refreshAt: number } | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;

  const fetchOnce = async (): Promise<AwsCredentialIdentity> => {
    const identity = await readIdentity(opts.stateDir);
    if (!identity) {
      throw new NotEnrolled(`no host session before the host registers (${identityPath(opts.stateDir)})`);
    }
    let res: Response;
    try {
      res = await doFetch(new URL(SESSION_PATH, opts.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${identity.credential}` },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new ApiUnavailable(
        `the host session endpoint ${opts.url} is unreachable: ${(error as Error).message}`,
      );
    }
    const text = await res.text();
    if (res.status === 403) {
      throw new NotEnrolled(
        `local mode refuses the credential of host ${identity.hostId} (${identityPath(opts.stateDir)}) for a session`,
      );
    }
    if (res.status !== 200) {
      throw new ApiUnavailable(`the host session endpoint ${opts.url} answered ${res.status}`);
    }
    let answer: SessionAnswer;
    try {
      answer = SessionAnswer.parse(JSON.parse(text));
    } catch {
      // Never the text: it may hold a key.
      throw new ApiUnavailable(
        `the host session endpoint ${opts.url} answered something else than a session`,
      );
    }
    const expiration = answer.Expiration ? new Date(answer.Expiration) : undefined;
    const credentials: AwsCredentialIdentity = {
      accessKeyId: answer.AccessKeyId,
      secretAccessKey: answer.SecretAccessKey,
      ...(answer.SessionToken ? { sessionToken: answer.SessionToken } : {}),
      ...(expiration ? { expiration } : {}),
    };
    cached = {
      identity: credentials,
      refreshAt: expiration ? expiration.getTime() - REFRESH_BEFORE_MS : Number.POSITIVE_INFINITY,
    };
    return credentials;
  };

  const provider = (async () => {
    if (cached && now() < cached.refreshAt) return cached.identity;
    pending ??= fetchOnce().finally(() => {
      pending = undefined;
    });
    return pending;
  }) as SessionCredentials & { memoized?: boolean };
  provider.invalidate = () => {
    cached = undefined;
  };
  // The SDK wraps a provider without this mark in its own cache, which never asks again for a
  // key that has no expiration: this one keeps its own, and must be asked after invalidate().
  provider.memoized = true;
  return provider;
}

/** A client whose stack takes initialize-step middleware (every SDK v3 client). */
interface WithStack {
  middlewareStack: MiddlewareStack<object, MetadataBearer>;
}

/**
 * Retry once, with a key fetched again, a call an endpoint refused for not knowing its key (the
 * first attempt signed with a key of an earlier start of local mode).
 */
function refreshOnStaleKey(client: WithStack, credentials: SessionCredentials): void {
  const retry: InitializeMiddleware<object, MetadataBearer> = (next) => async (args) => {
    try {
      return await next(args);
    } catch (error) {
      if (!STALE_KEY_ERRORS.has((error as Error).name)) throw error;
      credentials.invalidate();
      return next(args);
    }
  };
  client.middlewareStack.add(retry, { step: 'initialize', name: 'lifeboatHostSessionRefresh' });
}

/** The AWS clients of a runner signing with its host's session. */
export interface HostSessionClients {
  credentials: SessionCredentials;
  sqs: SQSClient;
  sfn: SFNClient;
  dynamo: DynamoDBDocumentClient;
}

/**
 * SQS (its queue), Step Functions (task answers) and DynamoDB (its progress records) signing
 * with `credentials`; endpoints as the SDK finds them (`AWS_ENDPOINT_URL_*`).
 */
export function hostSessionClients(credentials: SessionCredentials): HostSessionClients {
  const config = { region: region(), credentials };
  const sqs = new SQSClient(config);
  const sfn = new SFNClient(config);
  const ddb = new DynamoDBClient(config);
  for (const client of [sqs, sfn, ddb]) refreshOnStaleKey(client as unknown as WithStack, credentials);
  const dynamo = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
  return { credentials, sqs, sfn, dynamo };
}
