/**
 * A runner becomes its host's principal in two steps. An admin enrolls the host by name
 * (`POST /hosts/enroll`): a one-time token, answered once, whose hash is kept in the users table
 * as `enroll:<name>`. The runner then registers (`POST /hosts/register`) with that token as its
 * bearer: the host of that name is created (or, for a reinstalled host, found), its public key
 * stored, and a new credential issued whose hash becomes `host:<id>`; the enrollment is consumed
 * in the same transaction, so a replayed token gets 401.
 */
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { EnrollHostBody, parseBody, RegisterHostBody } from '#core/contracts/api.ts';
import { Conflict, Forbidden, Unauthorized } from '#core/errors.ts';
import { type Host, User } from '#core/model.ts';
import { dynamo } from '#platform/aws.ts';
import { log } from '#platform/log.ts';
import { parseHostPublicKey } from '#platform/sealed-secrets.ts';
import { hosts } from '../../repo/hosts.ts';
import { isTransactionConditionFailed } from '../../repo/table.ts';
import {
  enrollmentExpired,
  enrollmentName,
  HOSTS_GROUP,
  hostPrincipalName,
  isEnrollment,
  users,
} from '../../repo/users.ts';
import { hashToken, newToken } from '../auth.ts';
import { json, type RouteHandler } from '../http.ts';
import { createHost, hostNamed } from './hosts.ts';

const SPENT = 'enrollment token already used or expired: enroll the host again (lifeboat host enroll NAME)';

/** `POST /hosts/enroll {name, expiresInSeconds?}` (admins): `{ name, token, expiresAt }`, once. */
const enroll: RouteHandler = async (ctx) => {
  const body = parseBody(EnrollHostBody, ctx.body);
  const token = newToken('lbe');
  const now = new Date();
  const expiresAt = new Date(now.getTime() + body.expiresInSeconds * 1000).toISOString();
  // Replaces an earlier enrollment of the name: only the newest token works.
  await users.put({
    name: enrollmentName(body.name),
    group: HOSTS_GROUP,
    role: 'host',
    hostName: body.name,
    tokenHash: hashToken(token),
    enrollUntil: expiresAt,
    createdAt: now.toISOString(),
  });
  log('info', 'host enrolled', { hostName: body.name, expiresAt, by: ctx.user.name });
  return json({ name: body.name, token, expiresAt }, 201);
};

/** The host of that name, created when missing (a lost creation race reads it again). */
async function findOrCreate(name: string, publicKey: string): Promise<{ host: Host; created: boolean }> {
  const existing = await hostNamed(name);
  if (existing) return { host: existing, created: false };
  try {
    return { host: await createHost({ name, publicKey }), created: true };
  } catch (err) {
    const raced = err instanceof Conflict ? await hostNamed(name) : undefined;
    if (!raced) throw err;
    return { host: raced, created: false };
  }
}

/**
 * `POST /hosts/register {name, publicKey, runnerVersion?}` with an enrollment token: answers
 * `{ host, credential }`; the credential is shown only here.
 */
const register: RouteHandler = async (ctx) => {
  const enrollment = ctx.user;
  if (!isEnrollment(enrollment)) {
    throw new Forbidden('only an enrollment token (lifeboat host enroll NAME) may register a host');
  }
  const body = parseBody(RegisterHostBody, ctx.body);
  if (body.name !== enrollment.hostName) {
    throw new Forbidden(`this enrollment token is for host "${enrollment.hostName}", not "${body.name}"`);
  }
  parseHostPublicKey(body.publicKey);
  // The token index may lag behind a consumed enrollment: the record itself decides.
  const record = await users.find(enrollmentName(body.name));
  if (!record || record.tokenHash !== enrollment.tokenHash || enrollmentExpired(record)) {
    throw new Unauthorized(SPENT);
  }
  const { host, created } = await findOrCreate(body.name, body.publicKey);
  const credential = newToken('lbh');
  const principal = User.parse({
    name: hostPrincipalName(host.id),
    group: HOSTS_GROUP,
    role: 'host',
    hostId: host.id,
    tokenHash: hashToken(credential),
    createdAt: new Date().toISOString(),
  });
  const set = {
    publicKey: body.publicKey,
    ...(body.runnerVersion ? { runnerVersion: body.runnerVersion } : {}),
  };
  const fields = Object.entries(set).map(([field, value], i) => ({ field, value, tag: `f${i}` }));
  try {
    // One transaction: the enrollment is consumed if and only if the credential is issued, and
    // the key stored; a second use of the token (even racing this one) fails its condition.
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: users.name,
              Key: { name: record.name },
              ConditionExpression: '#t = :t AND #u > :now',
              ExpressionAttributeNames: { '#t': 'tokenHash', '#u': 'enrollUntil' },
              ExpressionAttributeValues: { ':t': enrollment.tokenHash, ':now': new Date().toISOString() },
            },
          },
          // Replaces the credential of an earlier registration of this host: that one stops working.
          { Put: { TableName: users.name, Item: principal } },
          {
            Update: {
              TableName: hosts.name,
              Key: { id: host.id },
              UpdateExpression: `SET ${fields.map((f) => `#${f.tag} = :${f.tag}`).join(', ')}`,
              ConditionExpression: 'attribute_exists(id)',
              ExpressionAttributeNames: Object.fromEntries(fields.map((f) => [`#${f.tag}`, f.field])),
              ExpressionAttributeValues: Object.fromEntries(fields.map((f) => [`:${f.tag}`, f.value])),
            },
          },
        ],
      }),
    );
  } catch (err) {
    if (isTransactionConditionFailed(err)) throw new Unauthorized(SPENT);
    throw err;
  }
  log('info', 'host registered', { hostId: host.id, hostName: host.name, created });
  return json({ host: { ...host, ...set }, credential }, created ? 201 : 200);
};

/** Enrollment routes by route key. */
export const hostEnrollmentRoutes: Record<string, RouteHandler> = {
  'POST /hosts/enroll': enroll,
  'POST /hosts/register': register,
};
