/**
 * The runner's API client in AWS (`LIFEBOAT_API_AUTH=iam`): every request is signed with AWS
 * Signature Version 4 for `execute-api`, with the credentials of the default AWS chain, which on
 * a hypervisor are the IAM Roles Anywhere session of the host's certificate (the credential
 * helper configured as `credential_process`). API Gateway checks the signature and the runner
 * policy (infra/runner-access.ts) before the API sees the request: no token is ever held.
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { ValidationError } from '#core/errors.ts';
import { type Authorize, apiClient, type RunnerApi } from './api-client.ts';

/** The signing service of API Gateway. */
export const EXECUTE_API = 'execute-api';

export interface SigningOptions {
  /** The default AWS credential chain when absent. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** The API's region; when absent, the endpoint's (`*.execute-api.<region>.amazonaws.com`), else AWS_REGION. */
  region?: string;
  /** The signing time (tests); now when absent. */
  now?: () => Date;
}

/** The region of an `execute-api` endpoint host, if it names one. */
export function regionOfEndpoint(hostname: string): string | undefined {
  return /^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(hostname)?.[1];
}

/** Adds the SigV4 `authorization`, `x-amz-date` (and session token) headers to a request. */
export function sigv4Authorize(options: SigningOptions = {}): Authorize {
  const credentials = options.credentials ?? defaultProvider();
  return async (request) => {
    const region = options.region ?? regionOfEndpoint(request.url.hostname) ?? process.env.AWS_REGION;
    if (!region) {
      throw new ValidationError(
        `cannot tell the region of ${request.url.host} to sign requests: set AWS_REGION`,
      );
    }
    const signer = new SignatureV4({ credentials, region, service: EXECUTE_API, sha256: Sha256 });
    const signed = await signer.sign(
      {
        method: request.method,
        protocol: request.url.protocol,
        hostname: request.url.hostname,
        ...(request.url.port ? { port: Number(request.url.port) } : {}),
        path: request.url.pathname,
        query: Object.fromEntries(request.url.searchParams),
        // `host` is signed; fetch sends the same one from the URL.
        headers: { ...request.headers, host: request.url.host },
        ...(request.body !== undefined ? { body: request.body } : {}),
      },
      options.now ? { signingDate: options.now() } : {},
    );
    const { host: _host, ...headers } = signed.headers as Record<string, string>;
    return headers;
  };
}

/** A client of the API at `endpoint()` whose requests are signed with the runner's IAM session. */
export function signedApi(endpoint: () => string, options: SigningOptions = {}): RunnerApi {
  return apiClient(endpoint, sigv4Authorize(options));
}
