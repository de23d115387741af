import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { parseDomainXml } from './domain-xml.ts';
import { toVmState } from './inventory.ts';
import { pointDiskAt } from './work-dir.ts';

const XML = `<domain type='kvm' id='3'>
  <name>web-1</name>
  <uuid>1e3f0a52-5d1c-4c61-9a4a-0d5b8e0c7f11</uuid>
  <metadata>
    <lb:vm xmlns:lb="urn:lifeboat:vm:1">
      <lb:disk target="vdb" volatile="yes"/>
      <lb:disk target="vda" volatile="no"/>
      <lb:backup_config><lb:KEEP_LAST>3</lb:KEEP_LAST><lb:FS_FREEZE>AGENT</lb:FS_FREEZE></lb:backup_config>
    </lb:vm>
    <other:thing xmlns:other="urn:example"><other:disk target="vda" volatile="yes"/></other:thing>
  </metadata>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web-1.qcow2' index='2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='ua-vda'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/web-1-data'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/web-1-rbd'><host name='mon1' port='6789'/></source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:ab:cd:ef'/>
      <source bridge='br0'/>
    </interface>
  </devices>
</domain>`;

describe('parseDomainXml', () => {
  const info = parseDomainXml(XML);

  it('reads name and uuid as text', () => {
    expect(info.name).toBe('web-1');
    expect(info.uuid).toBe('1e3f0a52-5d1c-4c61-9a4a-0d5b8e0c7f11');
  });

  it('reads every disk with its source, format and alias', () => {
    expect(info.disks).toEqual([
      {
        target: 'vda',
        device: 'disk',
        type: 'file',
        source: '/var/lib/libvirt/images/web-1.qcow2',
        format: 'qcow2',
        alias: 'ua-vda',
      },
      { target: 'vdb', device: 'disk', type: 'block', source: '/dev/vg0/web-1-data', format: 'raw' },
      { target: 'vdc', device: 'disk', type: 'network', source: 'pool/web-1-rbd', format: 'rbd' },
      { target: 'sda', device: 'cdrom', type: 'file', format: 'raw' },
    ]);
  });

  it('reads NICs with MAC and network or bridge', () => {
    expect(info.nics).toEqual([
      { type: 'network', mac: '52:54:00:12:34:56', network: 'default' },
      { type: 'bridge', mac: '52:54:00:ab:cd:ef', network: 'br0' },
    ]);
  });

  it('reads volatile disks and BACKUP_CONFIG from our namespace only, whatever its prefix', () => {
    expect(info.volatileTargets).toEqual(['vdb']);
    expect(info.backupConfig).toEqual({ KEEP_LAST: '3', FS_FREEZE: 'AGENT' });
  });

  it('has no BACKUP_CONFIG and no volatile disks without our metadata element', () => {
    const bare = parseDomainXml(
      "<domain><name>x</name><devices><disk type='file' device='disk'><target dev='vda'/></disk></devices></domain>",
    );
    expect(bare.backupConfig).toBeUndefined();
    expect(bare.volatileTargets).toEqual([]);
    expect(bare.disks).toEqual([{ target: 'vda', device: 'disk', type: 'file' }]);
  });

  it('reads a single metadata disk (not wrapped in a list)', () => {
    const one = parseDomainXml(
      '<domain><name>x</name><metadata><lifeboat:vm xmlns:lifeboat="urn:lifeboat:vm:1"><lifeboat:disk target="vdb" volatile="yes"/></lifeboat:vm></metadata></domain>',
    );
    expect(one.volatileTargets).toEqual(['vdb']);
  });

  it('rejects what is not a domain', () => {
    expect(() => parseDomainXml('<network><name>default</name></network>')).toThrow(ValidationError);
  });
});

describe('toVmState', () => {
  it('maps libvirt states to Lifeboat states', () => {
    expect(toVmState('running')).toBe('RUNNING');
    expect(toVmState('paused')).toBe('SUSPENDED');
    expect(toVmState('shut off')).toBe('POWEROFF');
    expect(toVmState(null)).toBe('GONE');
    expect(toVmState('dying')).toBe('UNKNOWN');
  });
});

describe('pointDiskAt', () => {
  const inactive = `<domain>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/work/b1/overlay-vda.qcow2'/>
      <backingStore type='file'>
        <format type='raw'/>
        <source file='/images/a.raw'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/images/b.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>`;

  it('points one disk back at its base file and format, dropping the backing chain', () => {
    const fixed = pointDiskAt(inactive, 'vda', '/images/a.raw', 'raw');
    const disks = parseDomainXml(`<domain><name>x</name>${fixed.slice('<domain>'.length)}`).disks;
    expect(disks[0]).toMatchObject({ target: 'vda', source: '/images/a.raw', format: 'raw' });
    expect(disks[1]).toMatchObject({ target: 'vdb', source: '/images/b.qcow2', format: 'qcow2' });
    expect(fixed).not.toContain('backingStore');
    expect(fixed).not.toContain('overlay-vda');
  });

  it('fails for a target the XML does not have', () => {
    expect(() => pointDiskAt(inactive, 'vdz', '/x', 'raw')).toThrow(/vdz/);
  });
});

describe('diskDriver', () => {
  it('finds the qcow2 driver by the name tasks use, and rejects unknown names', async () => {
    const { diskDriver } = await import('./registry.ts');
    expect(diskDriver('qcow2').name).toBe('qcow2');
    expect(() => diskDriver('vmdk')).toThrow(/vmdk/);
  });
});

describe('parseDomainXml: <lifeboat:owner>', () => {
  const domain = (owner: string) =>
    `<domain><name>x</name><metadata><lb:vm xmlns:lb="urn:lifeboat:vm:1">${owner}</lb:vm></metadata></domain>`;

  it('reads the owner and group of our element, and none without it', () => {
    expect(parseDomainXml(domain('<lb:owner user="alice" group="web"/>'))).toMatchObject({
      owner: { user: 'alice', group: 'web' },
    });
    expect(parseDomainXml(domain('<lb:owner user="alice"/>')).owner).toEqual({ user: 'alice' });
    const none = parseDomainXml(domain(''));
    expect(none.owner).toBeUndefined();
    expect(none.warnings).toBeUndefined();
    // Another namespace's owner is not ours.
    const other = parseDomainXml(
      '<domain><name>x</name><metadata><o:vm xmlns:o="urn:example"><o:owner user="alice"/></o:vm></metadata></domain>',
    );
    expect(other.owner).toBeUndefined();
  });

  it.each([
    ['<lb:owner user="host:1"/>'],
    ['<lb:owner user="../root"/>'],
    ['<lb:owner user="-rf"/>'],
    ['<lb:owner user=""/>'],
    ['<lb:owner group="web"/>'],
    [`<lb:owner user="${'a'.repeat(65)}"/>`],
    ['<lb:owner user="al&#10;ice"/>'],
    ['<lb:owner user="alice&amp;bob"/>'],
    ['<lb:owner user="alice"/><lb:owner user="bob"/>'],
    ['<lb:owner>alice</lb:owner>'],
  ])('ignores a hostile owner %s with a warning, never failing the parse', (owner) => {
    const info = parseDomainXml(domain(`${owner}<lb:disk target="vdb" volatile="yes"/>`));
    expect(info.owner).toBeUndefined();
    expect(info.warnings).toHaveLength(1);
    expect(info.warnings?.[0]).toMatch(/ignored/);
    expect(info.warnings?.[0]).not.toMatch(/root|rf|bob|host:1/);
    // The rest of the metadata still counts.
    expect(info.volatileTargets).toEqual(['vdb']);
  });

  it.each([['hosts'], ['web/x'], ['-x'], ['g'.repeat(65)]])(
    'keeps the user and drops a bad group %j',
    (group) => {
      const info = parseDomainXml(domain(`<lb:owner user="alice" group="${group}"/>`));
      expect(info.owner).toEqual({ user: 'alice' });
      expect(info.warnings).toEqual([expect.stringMatching(/group ignored/)]);
    },
  );
});
