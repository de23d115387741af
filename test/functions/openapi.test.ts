/**
 * `GET /openapi.json` through the real API handler on a control plane with data in it: no token
 * needed, the same document the generator builds, and nothing stored in it (no secret, no name).
 */
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '#functions/api/openapi.ts';
import { call } from '../helpers/api-events.ts';
import { useControlPlane } from '../helpers/control-plane-fixture.ts';

const ADMIN = 'lb_openapi-admin-0123456789abcdef';
const PASSWORD = 'openapi-secret-pw-8f3a';

useControlPlane({
  name: 'openapi',
  admin: { token: ADMIN },
  hosts: ['openapi-host'],
  resticPassword: PASSWORD,
});

describe('GET /openapi.json', () => {
  it('answers the document without a token, as JSON, with no stored value in it', async () => {
    const answer = await call('GET', '/openapi.json');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    // The datastore made by the fixture: its secret, name and host appear nowhere.
    expect((await call('GET', '/datastores/1', { token: ADMIN })).body.secretAttributes).toContain(
      'RESTIC_PASSWORD',
    );
    for (const stored of [PASSWORD, 'openapi-host', ADMIN]) expect(answer.raw).not.toContain(stored);
  });

  it('ignores a bad token instead of refusing it: the document is the same for everyone', async () => {
    const answer = await call('GET', '/openapi.json', { token: 'lb_not-a-token' });
    expect(answer.status).toBe(200);
    expect(answer.body.info.title).toBe('Lifeboat API');
  });

  it('is the only route a request without a token gets an answer from', async () => {
    expect((await call('GET', '/config')).status).toBe(401);
    expect((await call('POST', '/openapi.json')).status).toBe(401);
  });
});
