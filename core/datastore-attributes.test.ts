import { describe, expect, it } from 'vitest';
import {
  attributeIssues,
  checkRsyncArgs,
  checkTaskAttributes,
  DEFAULT_BASE_PATH,
  mergeAttributes,
  SECRET_ATTRIBUTES,
  splitSecrets,
  validateAttributes,
} from './datastore-attributes.ts';
import { ValidationError } from './errors.ts';

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as Error).message;
  }
  throw new Error('expected a ValidationError');
}

const restic = (attrs: Record<string, string>) =>
  validateAttributes('restic', { RESTIC_PASSWORD: 'pw', ...attrs });
const rsync = (attrs: Record<string, string>) =>
  validateAttributes('rsync', { RSYNC_HOST: 'backup-1', ...attrs });

describe('restic attributes', () => {
  it('fills defaults', () => {
    expect(validateAttributes('restic', { RESTIC_PASSWORD: 's3cret' })).toEqual({
      RESTIC_PASSWORD: 's3cret',
      BASE_PATH: DEFAULT_BASE_PATH,
      RESTIC_COMPRESSION: 'auto',
      RESTIC_CONNECTIONS: '5',
    });
  });

  it('requires RESTIC_PASSWORD, also when empty', () => {
    expect(rejection(() => validateAttributes('restic', {}))).toBe('attributes.RESTIC_PASSWORD: required');
    expect(rejection(() => validateAttributes('restic', { RESTIC_PASSWORD: '' }))).toBe(
      'attributes.RESTIC_PASSWORD: required',
    );
  });

  it('never quotes the password in a rejection', () => {
    const message = rejection(() => restic({ RESTIC_PASSWORD: 'hunter2\nsecond line' }));
    expect(message).toBe('attributes.RESTIC_PASSWORD: must be one line');
    expect(message).not.toContain('hunter2');
  });

  it('accepts host and host:port SFTP servers, IPv6 in brackets', () => {
    for (const server of ['backup-1', 'backup.example.com:2222', '10.0.0.5', '[::1]:22']) {
      expect(restic({ RESTIC_SFTP_SERVER: server }).RESTIC_SFTP_SERVER).toBe(server);
    }
  });

  it('rejects SFTP servers that are not host or host:port', () => {
    for (const server of ['-oProxyCommand=x', 'host:0', 'host:70000', 'user@host', 'a b', 'host:']) {
      expect(rejection(() => restic({ RESTIC_SFTP_SERVER: server }))).toMatch(
        /^attributes\.RESTIC_SFTP_SERVER: /,
      );
    }
  });

  it('checks compression, connections, bandwidth, nice and ionice ranges', () => {
    expect(restic({ RESTIC_COMPRESSION: 'MAX' }).RESTIC_COMPRESSION).toBe('max');
    expect(rejection(() => restic({ RESTIC_COMPRESSION: 'fast' }))).toBe(
      'attributes.RESTIC_COMPRESSION: must be one of off, auto, max (got "fast")',
    );
    expect(restic({ RESTIC_CONNECTIONS: '64' }).RESTIC_CONNECTIONS).toBe('64');
    expect(rejection(() => restic({ RESTIC_CONNECTIONS: '0' }))).toBe(
      'attributes.RESTIC_CONNECTIONS: must be an integer from 1 to 64 (got "0")',
    );
    expect(rejection(() => restic({ RESTIC_BWLIMIT: '0' }))).toContain('RESTIC_BWLIMIT');
    expect(restic({ RESTIC_NICE: '-20', RESTIC_IONICE: '7' })).toMatchObject({
      RESTIC_NICE: '-20',
      RESTIC_IONICE: '7',
    });
    expect(rejection(() => restic({ RESTIC_NICE: '20' }))).toContain('from -20 to 19');
    expect(rejection(() => restic({ RESTIC_IONICE: '8' }))).toContain('from 0 to 7');
  });

  it('rejects user names that could be options', () => {
    expect(restic({ RESTIC_SFTP_USER: 'backup' }).RESTIC_SFTP_USER).toBe('backup');
    expect(rejection(() => restic({ RESTIC_SFTP_USER: '-oX' }))).toContain('RESTIC_SFTP_USER');
  });

  it('rejects unknown attributes, including the other driver’s', () => {
    expect(rejection(() => restic({ RSYNC_HOST: 'x' }))).toMatch(
      /^attributes\.RSYNC_HOST: unknown attribute for driver restic; allowed: BASE_PATH, BRIDGE_LIST, RESTIC_PASSWORD/,
    );
  });
});

describe('common attributes', () => {
  it('BASE_PATH must be absolute and clean', () => {
    expect(rsync({ BASE_PATH: '/srv/backup/' }).BASE_PATH).toBe('/srv/backup');
    expect(rsync({ BASE_PATH: '/srv//backup' }).BASE_PATH).toBe('/srv/backup');
    for (const bad of ['srv/backup', '/srv/../etc', '/srv/a b', '/srv/$(id)', '/srv/./x']) {
      expect(rejection(() => rsync({ BASE_PATH: bad }))).toMatch(/^attributes\.BASE_PATH: must/);
    }
  });

  it('BRIDGE_LIST takes host names separated by spaces or commas', () => {
    expect(rsync({ BRIDGE_LIST: 'kvm-1, kvm-2  kvm-3' }).BRIDGE_LIST).toBe('kvm-1 kvm-2 kvm-3');
    expect(rejection(() => rsync({ BRIDGE_LIST: 'kvm-1 -x' }))).toContain('BRIDGE_LIST');
  });
});

describe('rsync attributes', () => {
  it('requires RSYNC_HOST and defaults RSYNC_ARGS to -aS', () => {
    expect(rejection(() => validateAttributes('rsync', {}))).toBe('attributes.RSYNC_HOST: required');
    expect(rsync({})).toEqual({ RSYNC_HOST: 'backup-1', BASE_PATH: DEFAULT_BASE_PATH, RSYNC_ARGS: '-aS' });
  });

  it('allows the usual safe options and normalizes spacing', () => {
    expect(checkRsyncArgs('  -aSz  --inplace --bwlimit=1000 --compress-level=3 -vHAX --numeric-ids ')).toBe(
      '-aSz --inplace --bwlimit=1000 --compress-level=3 -vHAX --numeric-ids',
    );
  });

  it('checkRsyncArgs alone throws ValidationError naming the option', () => {
    expect(rejection(() => checkRsyncArgs('-a --rsync-path=sh'))).toMatch(
      /^option "--rsync-path=sh" is not allowed/,
    );
  });

  it.each([
    ['-e ssh', 'option "-e" is not allowed'],
    ['-aSe', 'option "-e" is not allowed'],
    ['--rsh=ssh', 'option "--rsh=ssh" is not allowed'],
    ['--rsync-path=/tmp/x', 'option "--rsync-path=/tmp/x" is not allowed'],
    ['--daemon', 'option "--daemon" is not allowed'],
    ['--config=/etc/x', 'option "--config=/etc/x" is not allowed'],
    ['--files-from=/etc/passwd', 'option "--files-from=/etc/passwd" is not allowed'],
    ['--log-file=/tmp/l', 'option "--log-file=/tmp/l" is not allowed'],
    ['--rsh', 'option "--rsh" is not allowed'],
    ['--delete', 'option "--delete" is not allowed'],
    ['-T /tmp', 'option "-T" is not allowed'],
    ['--inplace=1', 'option "--inplace=1" is not allowed'],
    ['--bwlimit=fast', 'option "--bwlimit=fast" has a bad value'],
    ['--bwlimit', 'option "--bwlimit" has a bad value'],
    ['-a /etc', '"/etc" is not an option'],
  ])('rejects %s', (args, message) => {
    expect(rejection(() => rsync({ RSYNC_ARGS: args }))).toContain(`attributes.RSYNC_ARGS: ${message}`);
  });
});

describe('attributeIssues', () => {
  it('reports every problem with its path', () => {
    expect(attributeIssues('restic', { RESTIC_CONNECTIONS: '99', FOO: '1' }).map((i) => i.path)).toEqual([
      'attributes.RESTIC_CONNECTIONS',
      'attributes.FOO',
      'attributes.RESTIC_PASSWORD',
    ]);
  });
});

describe('secrets', () => {
  it('restic keeps RESTIC_PASSWORD as its only secret; rsync has none', () => {
    expect(SECRET_ATTRIBUTES).toEqual({ restic: ['RESTIC_PASSWORD'], rsync: [] });
  });

  it('splitSecrets moves secrets out of the stored attributes', () => {
    expect(splitSecrets('restic', restic({ RESTIC_SFTP_SERVER: 'b' }))).toEqual({
      attributes: {
        BASE_PATH: DEFAULT_BASE_PATH,
        RESTIC_SFTP_SERVER: 'b',
        RESTIC_COMPRESSION: 'auto',
        RESTIC_CONNECTIONS: '5',
      },
      secrets: { RESTIC_PASSWORD: 'pw' },
    });
  });
});

describe('mergeAttributes', () => {
  const current = {
    attributes: {
      BASE_PATH: '/srv',
      RESTIC_COMPRESSION: 'auto',
      RESTIC_CONNECTIONS: '5',
      RESTIC_BWLIMIT: '100',
    },
    secretAttributes: ['RESTIC_PASSWORD'],
  };

  it('changes the given keys, keeps the others and the existing secret', () => {
    expect(mergeAttributes('restic', current, { RESTIC_CONNECTIONS: '8' })).toEqual({
      attributes: {
        BASE_PATH: '/srv',
        RESTIC_COMPRESSION: 'auto',
        RESTIC_CONNECTIONS: '8',
        RESTIC_BWLIMIT: '100',
      },
      secretAttributes: ['RESTIC_PASSWORD'],
      secrets: {},
      removedSecrets: [],
    });
  });

  it('an empty value removes an attribute, back to its default', () => {
    const merged = mergeAttributes('restic', current, { RESTIC_BWLIMIT: '', RESTIC_CONNECTIONS: '' });
    expect(merged.attributes).toEqual({
      BASE_PATH: '/srv',
      RESTIC_COMPRESSION: 'auto',
      RESTIC_CONNECTIONS: '5',
    });
  });

  it('a new password is returned for the secret store, not in the attributes', () => {
    const merged = mergeAttributes('restic', current, { RESTIC_PASSWORD: 'new' });
    expect(merged.secrets).toEqual({ RESTIC_PASSWORD: 'new' });
    expect(merged.attributes).not.toHaveProperty('RESTIC_PASSWORD');
  });

  it('a required secret cannot be removed', () => {
    expect(rejection(() => mergeAttributes('restic', current, { RESTIC_PASSWORD: '' }))).toBe(
      'attributes.RESTIC_PASSWORD: required',
    );
  });

  it('rejects unknown and bad attributes, even with an empty value', () => {
    expect(rejection(() => mergeAttributes('restic', current, { NOPE: '' }))).toMatch(
      /^attributes\.NOPE: unknown/,
    );
    expect(rejection(() => mergeAttributes('restic', current, { RESTIC_NICE: '99' }))).toContain(
      'RESTIC_NICE',
    );
  });
});

describe('checkTaskAttributes (the runner re-checks what a task hands it)', () => {
  it('accepts what the API stored, without the secrets that come from the secret store', () => {
    expect(() => checkTaskAttributes('restic', { BASE_PATH: '/srv/backup' })).not.toThrow();
    expect(() =>
      checkTaskAttributes('rsync', { BASE_PATH: '/srv/b', RSYNC_HOST: 'bk:2222', RSYNC_ARGS: '-aS' }),
    ).not.toThrow();
  });

  it('refuses a BASE_PATH with a newline, a leading - or .., and anything unknown or missing', () => {
    for (const BASE_PATH of [
      '/srv/b\n-oProxyCommand=sh',
      '-oProxyCommand=sh',
      '/srv/../etc',
      'srv/b',
      '/srv/b;rm',
    ]) {
      expect(() => checkTaskAttributes('restic', { BASE_PATH }), BASE_PATH).toThrow(
        /^attributes\.BASE_PATH: /,
      );
    }
    expect(() => checkTaskAttributes('rsync', { BASE_PATH: '/b' })).toThrow(
      'attributes.RSYNC_HOST: required',
    );
    expect(() => checkTaskAttributes('rsync', { RSYNC_HOST: '-oProxyCommand=x' })).toThrow(/RSYNC_HOST/);
    expect(() => checkTaskAttributes('rsync', { RSYNC_HOST: 'bk', RSYNC_ARGS: '-e sh' })).toThrow(
      /RSYNC_ARGS/,
    );
    expect(() => checkTaskAttributes('restic', { RESTIC_SFTP_USER: '-l' })).toThrow(/RESTIC_SFTP_USER/);
    expect(() => checkTaskAttributes('restic', { SSH_COMMAND: 'sh' })).toThrow(
      /SSH_COMMAND: unknown attribute/,
    );
  });
});
