/**
 * Builds API Gateway HTTP API v2 events for the api handler, as API Gateway (and the local
 * gateway) would send them, and seeds users with known tokens.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { hashToken } from '#functions/api/auth.ts';
import { handler } from '#functions/api/handler.ts';
import { matchRoute } from '#functions/api/router.ts';
import { users } from '#functions/repo/users.ts';

/** How a test request authenticates: a bearer token, and/or the IAM context API Gateway adds. */
export interface CallOptions {
  token?: string;
  body?: unknown;
  /** `requestContext.authorizer.iam`, as API Gateway sets it on an IAM-authorized route. */
  iam?: boolean;
}

/** What API Gateway puts in `requestContext.authorizer` after IAM authorized a runner's request. */
export const IAM_AUTHORIZER = {
  iam: {
    accessKey: 'ASIAEXAMPLE',
    accountId: '123456789012',
    callerId: 'AROAEXAMPLE:3',
    cognitoIdentity: null,
    principalOrgId: null,
    userArn: 'arn:aws:sts::123456789012:assumed-role/lifeboat-runner/3',
    userId: 'AROAEXAMPLE:3',
  },
};

/** An event for `METHOD /concrete/path?query`, with routeKey and pathParameters filled in. */
export function apiEvent(method: string, url: string, options: CallOptions = {}): APIGatewayProxyEventV2 {
  const [path = '/', search = ''] = url.split('?');
  const match = matchRoute(method, path);
  const query = Object.fromEntries(new URLSearchParams(search));
  return {
    version: '2.0',
    routeKey: match?.key ?? '$default',
    rawPath: path,
    rawQueryString: search,
    headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
    queryStringParameters: search ? query : undefined,
    pathParameters: match && Object.keys(match.params).length ? match.params : undefined,
    body:
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body),
    isBase64Encoded: false,
    requestContext: {
      requestId: `test-${Math.random().toString(16).slice(2)}`,
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      ...(options.iam ? { authorizer: IAM_AUTHORIZER } : {}),
    } as APIGatewayProxyEventV2['requestContext'],
  };
}

/** A parsed answer of the api handler. */
export interface ApiAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers.
  body: any;
  raw: string;
}

/** Call the api handler the way the gateway does and parse the JSON answer. */
export async function call(method: string, url: string, options: CallOptions = {}): Promise<ApiAnswer> {
  const context = { awsRequestId: 'test', getRemainingTimeInMillis: () => 29_000 } as unknown as Context;
  const res = (await handler(apiEvent(method, url, options), context)) as APIGatewayProxyStructuredResultV2;
  const raw = typeof res.body === 'string' ? res.body : '';
  return { status: res.statusCode ?? 0, body: raw ? JSON.parse(raw) : undefined, raw };
}

/** Store a user whose API token is `token`. */
export async function seedUser(
  name: string,
  token: string,
  role: 'admin' | 'user' = 'admin',
  group = 'users',
): Promise<void> {
  await users.put({ name, group, role, tokenHash: hashToken(token), createdAt: new Date().toISOString() });
}
