/**
 * `lifeboat host disable|enable HOSTID` against a fake API: the request each sends, its output,
 * and a bad host id refused with exit 2 and one line before any request.
 */
import { describe, expect, it } from 'vitest';
import { type Reply, useFakeApi } from './fake-api.ts';
import { runCli } from './run-cli.ts';

const api = useFakeApi();

const HOST = { id: 2, name: 'kvm-2', cluster: 'default', createdAt: 'x' };
const patch: Reply = (request) => ({
  status: 200,
  body: { ...HOST, state: (request.body as { disabled: boolean }).disabled ? 'DISABLED' : 'OFFLINE' },
});

describe('host disable / enable', () => {
  it.each([
    ['disable', true, 'host 2: DISABLED'],
    ['enable', false, 'host 2: OFFLINE'],
  ])('host %s sends disabled=%s and prints the new state', async (command, disabled, line) => {
    const env = await api.serve({ 'PATCH /hosts/2': patch });
    const result = await runCli(['host', command, '2'], { env });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(line);
    expect(api.requests[0]?.body).toEqual({ disabled });
  });

  it('a bad host id is one line on stderr, exit 2, and no request', async () => {
    const env = await api.serve({ 'PATCH /hosts/2': patch });
    const result = await runCli(['host', 'disable', 'kvm-2'], { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(api.requests).toHaveLength(0);
  });
});
