import { describe, expect, it } from 'vitest';
import { downloadUrlsOf, formatDownloadUrl, parseDownloadUrl, pointFiles } from './downloader-url.ts';
import { ValidationError } from './errors.ts';

function rejection(url: string): string {
  try {
    parseDownloadUrl(url);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error(`${url} was accepted`);
}

describe('parseDownloadUrl', () => {
  it('reads a restic URL: datastore, backup id, file', () => {
    expect(parseDownloadUrl('restic://100/9f2c1ab7-0c1d-4e5f/disk.0.raw')).toEqual({
      scheme: 'restic',
      datastoreId: 100,
      backupId: '9f2c1ab7-0c1d-4e5f',
      file: 'disk.0.raw',
    });
  });

  it('reads an rsync URL: datastore, VM, hash, file', () => {
    expect(parseDownloadUrl('rsync://7/63/ab12cd/vm.xml')).toEqual({
      scheme: 'rsync',
      datastoreId: 7,
      vmId: 63,
      backupId: 'ab12cd',
      file: 'vm.xml',
    });
  });

  it('refuses unknown schemes and text that is no URL', () => {
    expect(rejection('s3://1/abc/disk.0.raw')).toMatch(
      /^url: unknown scheme "s3": use restic:\/\/ or rsync:\/\//,
    );
    expect(rejection('disk.0.raw')).toMatch(/^url: must look like restic:\/\/DS\/BACKUP\/FILE/);
  });

  it('refuses bad ids', () => {
    expect(rejection('restic://ds1/abc/disk.0.raw')).toContain(
      'the datastore id must be a non-negative integer',
    );
    expect(rejection('restic://-1/abc/disk.0.raw')).toContain('datastore id');
    expect(rejection('rsync://1/vm/abc/disk.0.raw')).toContain('the VM id must be a non-negative integer');
    expect(rejection('rsync://1/007/abc/disk.0.raw')).toContain('the VM id');
  });

  it('refuses .. anywhere, and slashes in the file', () => {
    expect(rejection('restic://1/../disk.0.raw')).toContain('must not contain ".."');
    expect(rejection('restic://1/abc/..')).toContain('must not contain ".."');
    expect(rejection('restic://1/abc/etc/passwd')).toContain('the file must be a plain name without "/"');
    expect(rejection('rsync://1/2/abc/sub/disk.0.raw')).toContain('without "/"');
    expect(rejection('restic://1/abc/disk 0.raw')).toContain('the file may hold only');
    expect(rejection('restic://1/abc/.')).toContain('the file must not be "."');
  });

  it('refuses empty or missing parts, queries and fragments', () => {
    expect(rejection('restic://1//disk.0.raw')).toContain('empty or missing part: restic://DS/BACKUP/FILE');
    expect(rejection('restic://1/abc/')).toContain('empty or missing part');
    expect(rejection('restic://1/abc')).toContain('empty or missing part');
    expect(rejection('rsync://1/2/abc')).toContain('empty or missing part: rsync://DS/VMID/HASH/FILE');
    expect(rejection('restic://1/abc/disk.0.raw?x=1')).toContain('query');
  });
});

describe('download URLs of an image', () => {
  const image = {
    datastoreId: 100,
    vmId: 3,
    state: 'READY',
    source: 'b-1',
    disks: [{ id: 0, file: 'disk.0.raw' }, { id: 2 }],
  };

  it('lists one URL per disk file plus vm.xml, each parsing back to the same backup', () => {
    const urls = downloadUrlsOf('restic', image);
    expect(urls).toEqual([
      'restic://100/b-1/disk.0.raw',
      'restic://100/b-1/disk.2',
      'restic://100/b-1/vm.xml',
    ]);
    expect(downloadUrlsOf('rsync', image)[0]).toBe('rsync://100/3/b-1/disk.0.raw');
    for (const url of [...urls, ...downloadUrlsOf('rsync', image)]) {
      expect(parseDownloadUrl(url)).toMatchObject({ datastoreId: 100, backupId: 'b-1' });
    }
  });

  it('has none for an image without stored data or not READY', () => {
    expect(downloadUrlsOf('restic', { ...image, source: '' })).toEqual([]);
    expect(downloadUrlsOf('restic', { ...image, state: 'DELETING' })).toEqual([]);
  });

  it('formats what parse reads', () => {
    const ref = { datastoreId: 5, vmId: 9, backupId: 'h', file: 'vm.xml' };
    expect(parseDownloadUrl(formatDownloadUrl('rsync', ref))).toEqual({ scheme: 'rsync', ...ref });
  });
});

describe('restore points', () => {
  const chain = {
    datastoreId: 100,
    vmId: 3,
    state: 'READY',
    source: 'full-1',
    disks: [{ id: 0, file: 'disk.0.raw' }],
    increments: [
      { id: 0, type: 'FULL', source: 'full-1' },
      { id: 1, type: 'INCREMENT', source: 'inc-1', disks: [{ id: 0, file: 'disk.0.inc1.qcow2' }] },
      { id: 2, type: 'INCREMENT', source: 'inc-2' },
    ],
  };

  it('lists the files of every point: the FULL, then each increment (older records by their naming rule)', () => {
    expect(pointFiles(chain)).toEqual([
      { backupId: 'full-1', files: ['disk.0.raw', 'vm.xml'] },
      { backupId: 'inc-1', files: ['disk.0.inc1.qcow2', 'vm.xml'] },
      { backupId: 'inc-2', files: ['disk.0.inc2.qcow2', 'vm.xml'] },
    ]);
  });

  it('gives a URL for each file of each point, for both drivers', () => {
    expect(downloadUrlsOf('restic', chain)).toEqual([
      'restic://100/full-1/disk.0.raw',
      'restic://100/full-1/vm.xml',
      'restic://100/inc-1/disk.0.inc1.qcow2',
      'restic://100/inc-1/vm.xml',
      'restic://100/inc-2/disk.0.inc2.qcow2',
      'restic://100/inc-2/vm.xml',
    ]);
    expect(downloadUrlsOf('rsync', chain)).toContain('rsync://100/3/inc-2/disk.0.inc2.qcow2');
    for (const url of downloadUrlsOf('rsync', chain))
      expect(parseDownloadUrl(url)).toMatchObject({ vmId: 3 });
  });
});
