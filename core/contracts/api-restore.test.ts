import { describe, expect, it } from 'vitest';
import { checkRestoreOptions, parseBody, RestoreRequestBody } from './api.ts';

const check = (body: Record<string, unknown>) => checkRestoreOptions(parseBody(RestoreRequestBody, body));
const rejection = (body: Record<string, unknown>) => {
  try {
    check(body);
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
};

describe('restore options', () => {
  it('a restore into a pool writes disk images only: no folder, no VM, not in place', () => {
    expect(check({ pool: 'rbd-restore' })).toEqual({ define: false });
    expect(check({ pool: 'rbd', hostId: 2, diskId: 0 })).toEqual({ define: false });
    expect(rejection({ pool: 'rbd', targetDir: '/srv/x' })).toBe(
      'targetDir: not with pool (a pool receives disk images only)',
    );
    expect(rejection({ pool: 'rbd', start: true })).toBe(
      'start: not with pool (a pool receives disk images only)',
    );
    expect(rejection({ pool: 'rbd', inPlace: true, confirmOverwrite: true })).toMatch(
      /^inPlace: not with pool/,
    );
    expect(() => parseBody(RestoreRequestBody, { pool: '--id=admin' })).toThrow(
      /^pool: must be a Ceph pool name/,
    );
    expect(() => parseBody(RestoreRequestBody, { pool: 'a/b' })).toThrow(/^pool: /);
  });

  it('defines the VM when a host is named, not otherwise, unless told', () => {
    expect(check({})).toEqual({ define: false });
    expect(check({ hostId: 3 })).toEqual({ define: true });
    expect(check({ hostId: 3, define: false })).toEqual({ define: false });
    expect(check({ define: true, start: true })).toEqual({ define: true });
    expect(check({ start: true })).toEqual({ define: true });
    // One disk onto a host: a disk image written there, no VM.
    expect(check({ hostId: 3, diskId: 0 })).toEqual({ define: false });
  });

  it('refuses names libvirt or a file system would choke on', () => {
    expect(() => parseBody(RestoreRequestBody, { name: '../x' })).toThrow(/^name: must be letters/);
    expect(() => parseBody(RestoreRequestBody, { name: 'a b' })).toThrow(/^name: /);
    expect(parseBody(RestoreRequestBody, { name: ' web-2 ' }).name).toBe('web-2');
  });

  it('an in-place restore needs the explicit confirmation and nothing that makes a new VM', () => {
    expect(rejection({ inPlace: true })).toMatch(/^inPlace: overwrites the VM's own disks; confirm with/);
    expect(check({ inPlace: true, confirmOverwrite: true })).toEqual({ define: false });
    expect(check({ inPlace: true, confirmOverwrite: true, diskId: 1, start: true })).toEqual({
      define: false,
    });
    expect(rejection({ inPlace: true, confirmOverwrite: true, name: 'x' })).toMatch(
      /^name: not with inPlace/,
    );
    expect(rejection({ inPlace: true, confirmOverwrite: true, hostId: 1 })).toMatch(
      /^hostId: not with inPlace/,
    );
    expect(rejection({ inPlace: true, confirmOverwrite: true, noIp: true })).toMatch(/^noIp\/noNic: /);
    expect(rejection({ confirmOverwrite: true })).toBe('confirmOverwrite: only with inPlace');
  });

  it('a single disk restores a disk image, never a VM', () => {
    expect(check({ diskId: 1 })).toEqual({ define: false });
    expect(rejection({ diskId: 1, start: true })).toBe(
      'diskId: cannot restore a VM from a single-disk backup (disk 1 restores a disk image only)',
    );
  });

  it('start needs a defined VM', () => {
    expect(rejection({ start: true, define: false })).toBe('start: only when the VM is defined on a host');
  });
});
