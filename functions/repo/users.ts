/**
 * Users table (key `name`), looked up by the sha256 of their API token (index byToken). Besides
 * users and admins it holds the runners' principals: `host:<id>` (role host, group hosts) for a
 * registered host's credential, and `enroll:<name>` for a one-time enrollment token.
 */
import { User } from '#core/model.ts';
import { Table } from './table.ts';

/** The users repository. */
export const users = new Table('users', User, 'User', 'name');

/** Group of every host principal. */
export const HOSTS_GROUP = 'hosts';

/** Name of the principal holding host `hostId`'s credential. */
export function hostPrincipalName(hostId: number): string {
  return `host:${hostId}`;
}

/** Name of the enrollment record of the host called `hostName` (one at a time per name). */
export function enrollmentName(hostName: string): string {
  return `enroll:${hostName}`;
}

/** Whether `user` is an enrollment (a token that may only register its host). */
export function isEnrollment(user: User): user is User & { hostName: string } {
  return user.role === 'host' && user.hostId === undefined && user.hostName !== undefined;
}

/** Whether an enrollment's token has expired at `now` (a record without a date has). */
export function enrollmentExpired(user: Pick<User, 'enrollUntil'>, now = Date.now()): boolean {
  const until = Date.parse(user.enrollUntil ?? '');
  return !Number.isFinite(until) || until <= now;
}

/** The user whose token hashes to `tokenHash`, if any. */
export async function userByTokenHash(tokenHash: string): Promise<User | undefined> {
  const found = await users.query('byToken', {
    expression: '#t = :t',
    names: { '#t': 'tokenHash' },
    values: { ':t': tokenHash },
  });
  return found[0];
}
