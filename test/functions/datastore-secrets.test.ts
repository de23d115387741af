/**
 * A restic datastore's password goes to the secret store and nowhere else: not in any answer of
 * datastore create, show, list or update (refusals included), not in the stored record, not in
 * the API's log lines.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { datastores } from '#functions/repo/datastores.ts';
import { type ApiAnswer, call, seedUser } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = { token: 'admin-token-secrets-0123456789' };
const ALICE = { token: 'alice-token-secrets-0123456789' };
const PASSWORD = 'pw-Tr0ub4dor&3-correct-horse';
const NEW_PASSWORD = 'pw-2-staple-battery-horse';
const logged: string[] = [];

const plane = useControlPlane({
  name: 'ds-secrets',
  secrets: 'subfolder',
  // Every level, so any line the API writes is checked.
  env: { LIFEBOAT_LOG_LEVEL: undefined },
  admin: { token: ADMIN.token, group: 'admin' },
});
beforeAll(async () => {
  await seedUser('alice', ALICE.token, 'user', 'users');
  for (const stream of ['log', 'error', 'warn', 'info'] as const) {
    vi.spyOn(console, stream).mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '));
    });
  }
});
afterAll(async () => {
  vi.restoreAllMocks();
});

describe('a restic datastore password', () => {
  it('appears in no answer, record or log line, only in the secret store', async () => {
    const answers: ApiAnswer[] = [];
    const ask = async (method: string, url: string, options: { token: string; body?: unknown }) => {
      const answer = await call(method, url, options);
      answers.push(answer);
      return answer;
    };
    const restic = (attributes: Record<string, unknown>, name = 'secret-ds') => ({
      name,
      driver: 'restic',
      attributes: { BASE_PATH: '/srv/backups', ...attributes },
    });

    const created = await ask('POST', '/datastores', {
      ...ADMIN,
      body: restic({ RESTIC_PASSWORD: PASSWORD }),
    });
    expect(created.status).toBe(201);
    expect(created.body.secretAttributes).toEqual(['RESTIC_PASSWORD']);
    const id = created.body.id as number;

    // Refusals that carry the password in their request.
    const refused = [
      await ask('POST', '/datastores', { ...ADMIN, body: restic({ RESTIC_PASSWORD: PASSWORD }) }),
      await ask('POST', '/datastores', {
        ...ADMIN,
        body: restic({ RESTIC_PASSWORD: PASSWORD, RESTIC_CONNECTIONS: '999' }, 'other'),
      }),
      await ask('POST', '/datastores', {
        ...ADMIN,
        body: restic({ RESTIC_PASSWORD: `${PASSWORD}\nx` }, 'other'),
      }),
      await ask('POST', '/datastores', {
        ...ADMIN,
        body: restic({ RESTIC_PASSWORD: PASSWORD.repeat(60) }, 'other'),
      }),
      await ask('POST', '/datastores', {
        ...ADMIN,
        body: { name: 'other', driver: 'rsync', attributes: { RSYNC_HOST: 'h', RESTIC_PASSWORD: PASSWORD } },
      }),
      await ask('PATCH', `/datastores/${id}`, {
        ...ADMIN,
        body: { attributes: { RESTIC_PASSWORD: `${PASSWORD}\r` } },
      }),
      await ask('PATCH', `/datastores/${id}`, {
        ...ALICE,
        body: { attributes: { RESTIC_PASSWORD: PASSWORD } },
      }),
    ];
    expect(refused.map((answer) => answer.status)).toEqual([409, 400, 400, 400, 400, 400, 403]);
    // Only admins create datastores; one given to alice is hers to use.
    const refusedToAlice = await ask('POST', '/datastores', {
      ...ALICE,
      body: restic({ RESTIC_PASSWORD: PASSWORD }, 'alice-ds'),
    });
    expect(refusedToAlice.body).toEqual({ error: 'Forbidden', message: 'only admins may create datastores' });
    const byAlice = await ask('POST', '/datastores', {
      ...ADMIN,
      body: restic({ RESTIC_PASSWORD: PASSWORD }, 'alice-ds'),
    });
    expect(byAlice.status).toBe(201);
    const given = await ask('PUT', `/datastores/${byAlice.body.id}/owner`, {
      ...ADMIN,
      body: { owner: 'alice', group: 'users' },
    });
    expect(given.body).toMatchObject({ owner: 'alice', group: 'users', octal: '600' });
    expect((await ask('GET', `/datastores/${byAlice.body.id}`, ALICE)).status).toBe(200);
    expect((await ask('GET', '/datastores', ALICE)).body.items).toHaveLength(1);

    expect((await ask('GET', `/datastores/${id}`, ADMIN)).status).toBe(200);
    expect((await ask('GET', '/datastores', ADMIN)).body.items).toHaveLength(2);
    const updated = await ask('PATCH', `/datastores/${id}`, {
      ...ADMIN,
      body: { attributes: { RESTIC_PASSWORD: NEW_PASSWORD } },
    });
    expect(updated.status).toBe(200);
    expect((await ask('GET', `/datastores/${id}`, ADMIN)).status).toBe(200);

    for (const answer of answers) {
      expect(answer.raw).not.toContain(PASSWORD);
      expect(answer.raw).not.toContain(NEW_PASSWORD);
      // Nor a piece of it a message could have quoted.
      expect(answer.raw).not.toContain(PASSWORD.slice(0, 12));
    }
    const record = JSON.stringify(await datastores.get(id));
    expect(record).not.toContain(PASSWORD);
    expect(record).not.toContain(NEW_PASSWORD);
    for (const line of logged) {
      expect(line).not.toContain(PASSWORD.slice(0, 12));
      expect(line).not.toContain(NEW_PASSWORD);
    }
    expect(await readFile(join(plane.secretsDir, `ds_${id}.json`), 'utf8')).toContain(NEW_PASSWORD);
  });
});
