/**
 * Checks that a request to a local emulator is signed (AWS Signature Version 4) with local
 * mode's per-start access key (local/credentials.ts). The endpoints the API does not front
 * (DynamoDB Local, the SQS emulator, the Step Functions shim, the Lambda endpoint) refuse any
 * other request, so a process on the machine that cannot read the home folder cannot forge a
 * runner task or write a user. The signature is recomputed with the SDK's own signer from the
 * method, path, query, the signed headers and the raw body, and compared in constant time.
 */
import { createHash, createHmac, type Hash, type Hmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest } from '@smithy/types';
import type { LocalCredentials } from './credentials.ts';
import { PayloadTooLarge, readBody, sendJson, sendTooLarge } from './http.ts';
import { type LocalService, requestChecks, sendAccessDenied } from './iam/enforce.ts';
import type { Principal } from './iam/evaluate.ts';
import type { LocalIam } from './iam/keyring.ts';

/** How far an `x-amz-date` may be from this machine's clock, as in AWS. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

/** What a request is checked from. */
export interface SignedRequest {
  method: string;
  /** The request target as received: path and query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

/** Why a request is refused, in the AWS JSON protocols' error shape. */
export interface SignatureFailure {
  type: 'UnrecognizedClientException' | 'InvalidSignatureException';
  message: string;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const unrecognized = (message: string): SignatureFailure => ({
  type: 'UnrecognizedClientException',
  message,
});
const invalid = (message: string): SignatureFailure => ({ type: 'InvalidSignatureException', message });

/** The keys an endpoint accepts: one key, or a key ring (local/iam/keyring.ts) by access key id. */
export type KeyLookup = LocalCredentials | ((accessKeyId: string) => LocalCredentials | undefined);

/**
 * Check `request` against `credentials` at time `now`; undefined when it is correctly signed.
 * Refused: no or another access key, a header the signature names but the request lacks, a
 * signature that leaves out `host` or `x-amz-date`, an `x-amz-date` more than 15 minutes off,
 * an `x-amz-content-sha256` that is not the body's hash, and any signature that does not match.
 */
export async function checkSignature(
  request: SignedRequest,
  keys: KeyLookup,
  now: number = Date.now(),
): Promise<SignatureFailure | undefined> {
  const auth = header(request.headers, 'authorization');
  if (!auth?.startsWith(`${ALGORITHM} `)) {
    return unrecognized('the request is not signed with the local access key (AWS Signature Version 4)');
  }
  const fields = parseAuthorization(auth.slice(ALGORITHM.length + 1));
  const scope = fields.Credential?.split('/') ?? [];
  const [keyId, day, region, service, terminator] = scope;
  const credentials = keyId ? keyFor(keys, keyId) : undefined;
  if (!keyId || !credentials) {
    return unrecognized('The security token included in the request is invalid.');
  }
  if (scope.length !== 5 || !day || !region || !service || terminator !== 'aws4_request') {
    return invalid('the credential scope is malformed');
  }
  const given = fields.Signature ?? '';
  const signedNames = (fields.SignedHeaders ?? '').split(';').filter(Boolean);
  if (!/^[0-9a-f]{64}$/.test(given) || !signedNames.length) return invalid('the signature is malformed');
  if (!signedNames.includes('host') || !signedNames.includes('x-amz-date')) {
    return invalid('the signature must cover the host and x-amz-date headers');
  }

  const amzDate = header(request.headers, 'x-amz-date') ?? '';
  const date = parseAmzDate(amzDate);
  if (!date) return invalid('x-amz-date is missing or malformed');
  if (amzDate.slice(0, 8) !== day) return invalid('the credential scope date is not the date of x-amz-date');
  if (Math.abs(now - date.getTime()) > MAX_CLOCK_SKEW_MS) {
    return invalid(`Signature expired: ${amzDate} is more than 15 minutes from the server's time`);
  }

  const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
  const contentHash = header(request.headers, 'x-amz-content-sha256');
  // The signer takes this header's word for the body's hash: hold it to the body actually sent.
  if (contentHash !== undefined && contentHash !== sha256Hex(body)) {
    return invalid('x-amz-content-sha256 is not the hash of the body');
  }

  const headers: Record<string, string> = {};
  for (const name of signedNames) {
    const value = header(request.headers, name);
    if (value === undefined) return invalid(`the signed header ${name} is missing`);
    headers[name] = value;
  }
  const target = splitTarget(request.url);
  if (!target) return invalid('the request path or query is not validly percent-encoded');

  const signer = new SignatureV4({
    credentials,
    region,
    service,
    sha256: NodeSha256,
    applyChecksum: false,
  });
  const toSign: HttpRequest = {
    method: request.method.toUpperCase(),
    protocol: 'http:',
    hostname: headers.host ?? '',
    path: target.path,
    query: target.query,
    headers,
    body: body.length ? body : undefined,
  };
  const signed = await signer.sign(toSign, {
    signingDate: date,
    signingRegion: region,
    signingService: service,
    signableHeaders: new Set(signedNames),
  });
  const expected = parseAuthorization(String(signed.headers.authorization ?? '').slice(ALGORITHM.length + 1));
  const ok =
    sameText(expected.Signature ?? '', given) && (expected.SignedHeaders ?? '') === signedNames.join(';');
  return ok
    ? undefined
    : invalid('The request signature we calculated does not match the signature you provided.');
}

/** The credentials of `keyId` (compared in constant time when there is one key). */
function keyFor(keys: KeyLookup, keyId: string): LocalCredentials | undefined {
  if (typeof keys === 'function') return keys(keyId);
  return sameText(keyId, keys.accessKeyId) ? keys : undefined;
}

/** The access key id a request claims to be signed with (checked by {@link checkSignature}). */
export function accessKeyIdOf(headers: IncomingHttpHeaders): string | undefined {
  const auth = header(headers, 'authorization');
  if (!auth?.startsWith(`${ALGORITHM} `)) return undefined;
  return parseAuthorization(auth.slice(ALGORITHM.length + 1)).Credential?.split('/')[0];
}

/** Answer a refused request: 403 with `{ __type, message }`, as the AWS JSON protocols report errors. */
export function sendSignatureFailure(res: ServerResponse, failure: SignatureFailure): void {
  sendJson(
    res,
    403,
    { __type: failure.type, message: failure.message },
    { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': failure.type },
  );
}

/** `Credential=...`, `SignedHeaders=...`, `Signature=...` of an Authorization header. */
function parseAuthorization(rest: string): Record<string, string | undefined> {
  const fields: Record<string, string | undefined> = {};
  for (const part of rest.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return fields;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

function parseAmzDate(text: string): Date | undefined {
  const m = AMZ_DATE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  const date = new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The path as sent (the signer encodes it once more, as the client's did) and the decoded query. */
function splitTarget(url: string): { path: string; query: Record<string, string | string[]> } | undefined {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query: Record<string, string | string[]> = {};
  try {
    for (const pair of q < 0 ? [] : url.slice(q + 1).split('&')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      const key = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      const value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
      const existing = query[key];
      query[key] = existing === undefined ? value : [...[existing].flat(), value];
    }
  } catch {
    return undefined;
  }
  return { path: path || '/', query };
}

function sha256Hex(data: Uint8Array): string {
  return data.length ? createHash('sha256').update(data).digest('hex') : EMPTY_SHA256;
}

/** Equality in time that does not depend on where two strings differ. */
function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/** The SDK signer's hash interface over node:crypto (sha256, or HMAC-sha256 with a key). */
export class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.create();
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.create();
  }
  private create(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.secret));
  }
}

function toBuffer(data: string | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * The body of a request to one of local mode's AWS-style endpoints, once it fits `limit`, is
 * signed with one of local mode's keys and, when `credentials` is the key ring, is allowed by
 * the signer's IAM policies for `service`. Undefined when the request is already answered: 413
 * with the service's own error document (`tooLarge`), 403 for a bad signature, AWS's
 * AccessDeniedException for a call the signer's policies do not allow, or dropped when the
 * client went away mid-body. A single key (`LocalCredentials`) is accepted and enforces nothing.
 */
export async function readSignedRequest(
  req: IncomingMessage,
  res: ServerResponse,
  opts: {
    limit: number;
    credentials: LocalCredentials | LocalIam;
    service: LocalService;
    tooLarge: { body: (message: string) => unknown; headers: Record<string, string> };
  },
): Promise<Buffer | undefined> {
  let body: Buffer;
  try {
    body = await readBody(req, opts.limit);
  } catch (err) {
    if (err instanceof PayloadTooLarge)
      sendTooLarge(req, res, opts.tooLarge.body(err.message), opts.tooLarge.headers);
    else res.destroy();
    return undefined;
  }
  const request = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body };
  const iam = isKeyRing(opts.credentials) ? opts.credentials : undefined;
  const failure = await checkSignature(
    request,
    iam ? (keyId) => iam.lookup(keyId)?.credentials : (opts.credentials as LocalCredentials),
  );
  if (failure) {
    sendSignatureFailure(res, failure);
    return undefined;
  }
  if (!iam) return body;
  const principal = iam.lookup(accessKeyIdOf(req.headers) ?? '')?.principal as Principal;
  // A call the parsers do not know (another target, such as DynamoDB Local's Streams API) is
  // one no policy grants: only the admin makes it.
  const checks = requestChecks(opts.service, request, iam.region) ?? [
    { action: `${opts.service}:UnrecognizedCall`, resource: '*' },
  ];
  const denial = await iam.authorize(principal, checks);
  if (denial) {
    sendAccessDenied(res, opts.service, denial, request);
    return undefined;
  }
  return body;
}

function isKeyRing(credentials: LocalCredentials | LocalIam): credentials is LocalIam {
  return typeof (credentials as LocalIam).lookup === 'function';
}
