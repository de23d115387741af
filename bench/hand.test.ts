import { describe, expect, it } from 'vitest';
import { handCopyCommands, nbdUri, overlayArgs, pullBackupXml } from './hand.ts';

describe('hand pipeline arguments', () => {
  it('asks libvirt for a pull-mode export of the one disk on a unix socket, with a scratch file', () => {
    expect(pullBackupXml('vda', '/w/nbd.sock', '/w/scratch-vda.qcow2')).toBe(
      "<domainbackup mode='pull'><server transport='unix' socket='/w/nbd.sock'/>" +
        "<disks><disk name='vda' backup='yes' type='file'><scratch file='/w/scratch-vda.qcow2'/></disk></disks>" +
        '</domainbackup>',
    );
  });

  it('escapes quotes and markup in paths, so a path cannot change the XML', () => {
    const xml = pullBackupXml('vda', "/w/it's<x>&.sock", '/w/s');
    expect(xml).toContain("socket='/w/it&apos;s&lt;x>&amp;.sock'");
  });

  it('reads the export named after the disk, the socket path URI-encoded', () => {
    expect(nbdUri('vda', '/var/lib/a b/nbd.sock')).toBe('nbd+unix:///vda?socket=/var/lib/a%20b/nbd.sock');
  });

  it('pipes nbdcopy to stdout into restic backup --stdin under the stored name', () => {
    const cmd = handCopyCommands(
      'nbd+unix:///vda?socket=/s',
      ['-r', 'sftp:x:/b/1', '-o', 'sftp.command=ssh'],
      'disk.0.raw',
    );
    expect(cmd.nbdcopy).toEqual(['nbd+unix:///vda?socket=/s', '-']);
    expect(cmd.restic).toEqual([
      '-r',
      'sftp:x:/b/1',
      '-o',
      'sftp.command=ssh',
      'backup',
      '--stdin',
      '--stdin-filename',
      'disk.0.raw',
    ]);
  });

  it('puts only the named disk on an external overlay, commas doubled for virsh', () => {
    expect(overlayArgs('dom', 'vda', '/w/a,b.qcow2')).toEqual([
      'snapshot-create-as',
      'dom',
      '--disk-only',
      '--atomic',
      '--no-metadata',
      '--diskspec',
      'vda,snapshot=external,file=/w/a,,b.qcow2',
    ]);
  });
});
