import { describe, expect, it } from 'vitest';
import { diskSources, trackedBaseOf, trackingPath } from './tracking-overlay.ts';

describe('tracking overlay names', () => {
  it('names the overlay beside the disk and finds the disk back from it', () => {
    const overlay = trackingPath('/vms/a b/vda.qcow2', 'lifeboat-12');
    expect(overlay).toBe('/vms/a b/vda.qcow2.lifeboat-12.qcow2');
    expect(trackedBaseOf(overlay)).toEqual({ base: '/vms/a b/vda.qcow2', checkpoint: 'lifeboat-12' });
  });

  it('does not take an ordinary disk or an operator snapshot for one of ours', () => {
    expect(trackedBaseOf('/vms/vda.qcow2')).toBeUndefined();
    expect(trackedBaseOf('/vms/vda.qcow2.snap1.qcow2')).toBeUndefined();
  });
});

describe('diskSources', () => {
  const xml = `<domain><devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='/v/vda.raw.lifeboat-2.qcow2' index='4'/>
      <backingStore type='file' index='2'><format type='qcow2'/><source file='/v/vda.raw.lifeboat-1.qcow2'/>
        <backingStore type='file' index='1'><format type='raw'/><source file='/v/it&apos;s.raw'/><backingStore/></backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/vdb.raw'/><target dev='vdb' bus='virtio'/></disk>
  </devices></domain>`;

  it('lists a disk chain top first, with XML entities decoded', () => {
    expect(diskSources(xml, 'vda')).toEqual([
      '/v/vda.raw.lifeboat-2.qcow2',
      '/v/vda.raw.lifeboat-1.qcow2',
      "/v/it's.raw",
    ]);
    expect(diskSources(xml, 'vdb')).toEqual(['/v/vdb.raw']);
    expect(diskSources(xml, 'vdc')).toEqual([]);
  });
});
