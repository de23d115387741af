/**
 * `lifeboat user quota` and `lifeboat group quota` against a fake API: no pairs reads usage and
 * limits, pairs set them (on DSID or all datastores), the table and `--json`, a refusal's
 * `Forbidden:` line, and bad pairs refused before any request (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();
const { serve } = api;

const VIEW = {
  kind: 'user',
  name: 'alice',
  exempt: false,
  entries: [
    { datastore: 'all', size: { used: 30, limit: -1 }, images: { used: 2, limit: 10 } },
    { datastore: 100, size: { used: 30, limit: 64 }, images: { used: 2, limit: -1 } },
  ],
};

describe('lifeboat user quota', () => {
  it('shows usage against limits, "-" for unlimited', async () => {
    const env = await serve({ 'GET /users/alice/quota': { status: 200, body: VIEW } });
    const shown = await runCli(['user', 'quota', 'alice'], { env });
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.stdout.split('\n')).toEqual([
      'user alice',
      expect.stringMatching(/^DATASTORE\s+SIZE \(MiB\)\s+IMAGES$/),
      expect.stringMatching(/^all\s+30 \/ -\s+2 \/ 10$/),
      expect.stringMatching(/^100\s+30 \/ 64\s+2 \/ -$/),
    ]);
    const one = await runCli(['user', 'quota', 'alice', '100'], { env });
    expect(one.stdout.split('\n')).toHaveLength(3);
    expect(JSON.parse((await runCli(['user', 'quota', 'alice', '--json'], { env })).stdout)).toEqual(VIEW);
    expect(api.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'GET']);
  });

  it('sets SIZE and IMAGES on a datastore, or on all of them', async () => {
    const env = await serve({ 'PUT /users/alice/quota': { status: 200, body: VIEW } });
    expect((await runCli(['user', 'quota', 'alice', '100', 'SIZE=64', 'images=-1'], { env })).exitCode).toBe(
      0,
    );
    expect(api.requests[0]?.body).toEqual({ datastoreId: 100, pairs: { SIZE: '64', IMAGES: '-1' } });
    expect((await runCli(['user', 'quota', 'alice', 'IMAGES=10'], { env })).exitCode).toBe(0);
    expect(api.requests[1]?.body).toEqual({ pairs: { IMAGES: '10' } });
  });

  it('refuses bad pairs before any request, and shows a refusal as Forbidden', async () => {
    const env = await serve({
      'PUT /users/alice/quota': {
        status: 403,
        body: { error: 'Forbidden', message: 'only admins may set quotas' },
      },
    });
    for (const args of [['VMS=3'], ['100', 'SIZE'], ['100', '7'], ['SIZE=1.5'], ['IMAGES=-2']]) {
      const bad = await runCli(['user', 'quota', 'alice', ...args], { env });
      expect(bad.exitCode, args.join(' ')).toBe(2);
    }
    expect(api.requests).toEqual([]);
    const refused = await runCli(['user', 'quota', 'alice', 'SIZE=1'], { env });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('Forbidden: only admins may set quotas');
  });
});

describe('lifeboat group quota', () => {
  it('reads and sets a group quota', async () => {
    const group = { ...VIEW, kind: 'group', name: 'web' };
    const env = await serve({
      'GET /groups/web/quota': { status: 200, body: group },
      'PUT /groups/web/quota': { status: 200, body: group },
    });
    expect((await runCli(['group', 'quota', 'web'], { env })).stdout).toMatch(/^group web\n/);
    expect((await runCli(['group', 'quota', 'web', '100', 'SIZE=2048'], { env })).exitCode).toBe(0);
    expect(api.requests[1]?.body).toEqual({ datastoreId: 100, pairs: { SIZE: '2048' } });
  });
});
