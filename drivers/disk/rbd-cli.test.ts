import { describe, expect, it } from 'vitest';
import { checkSnapshot, imageSpec, parseImage, Rbd } from './rbd-cli.ts';

describe('rbd names', () => {
  it('reads pool/image and pool/namespace/image', () => {
    expect(parseImage('rbd/vm-1.disk_0')).toEqual({ pool: 'rbd', image: 'vm-1.disk_0' });
    expect(parseImage('pool/ns/img')).toEqual({ pool: 'pool', namespace: 'ns', image: 'img' });
    expect(imageSpec(parseImage('pool/ns/img'), 'lifeboat-7-2')).toBe('pool/ns/img@lifeboat-7-2');
  });

  it.each([
    '-x/img',
    'pool/-img',
    'pool/--conf=/tmp/x',
    'pool/img@snap',
    'pool/img:conf=/etc/x',
    'pool',
    'a/b/c/d',
    'pool/.hidden',
    'pool/im g',
    'pool/\nimg',
    '/img',
  ])('refuses the source %j before it reaches an argument array', (source) => {
    expect(() => parseImage(source)).toThrow(expect.objectContaining({ name: 'ValidationError' }));
  });

  it('accepts only our snapshot names', () => {
    expect(checkSnapshot('lifeboat-chain-3')).toBe('lifeboat-chain-3');
    for (const bad of ['snap', '-lifeboat-1', 'lifeboat-', 'lifeboat-a@b', 'lifeboat-a/b', 'x-lifeboat-1']) {
      expect(() => checkSnapshot(bad), bad).toThrow(expect.objectContaining({ name: 'ValidationError' }));
    }
  });

  it('refuses a client id that could be an option', () => {
    expect(() => new Rbd({}, '--keyring=/etc/shadow')).toThrow(
      expect.objectContaining({ name: 'ValidationError' }),
    );
    expect(new Rbd({ conf: '/c' }, 'backup').command(['info', 'p/i'])).toEqual({
      file: 'rbd',
      args: ['--id', 'backup', 'info', 'p/i'],
      env: { CEPH_CONF: '/c' },
    });
  });
});
