import { describe, expect, it } from 'vitest';
import { peerArgs } from './peer.ts';

describe('virtnbdbackup arguments', () => {
  it('backs up the domain at the level asked into the output folder, its socket and scratch in our folder', () => {
    expect(
      peerArgs({ domain: 'vm1', level: 'full', output: '/o', work: '/w', uri: 'qemu:///system' }),
    ).toEqual([
      '-U',
      'qemu:///system',
      '-d',
      'vm1',
      '-l',
      'full',
      '-o',
      '/o',
      '-S',
      '/w',
      '-f',
      '/w/nbd.sock',
      '--noprogress',
    ]);
  });

  it('includes raw-format disks when told (they have no bitmaps: a copy only)', () => {
    const args = peerArgs({ domain: 'vm1', level: 'copy', output: '/o', work: '/w', raw: true });
    expect(args.slice(-2)).toEqual(['--noprogress', '--raw']);
    expect(args[args.indexOf('-l') + 1]).toBe('copy');
  });
});
