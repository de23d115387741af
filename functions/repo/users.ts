/** Users table (key `name`), looked up by the sha256 of their API token (index byToken). */
import { User } from '#core/model.ts';
import { Table } from './table.ts';

/** The users repository. */
export const users = new Table('users', User, 'User', 'name');

/** The user whose token hashes to `tokenHash`, if any. */
export async function userByTokenHash(tokenHash: string): Promise<User | undefined> {
  const found = await users.query('byToken', {
    expression: '#t = :t',
    names: { '#t': 'tokenHash' },
    values: { ':t': tokenHash },
  });
  return found[0];
}
