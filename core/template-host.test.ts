import { describe, expect, it } from 'vitest';
import { cleanTemplate } from './template.ts';
import { SOURCE_XML } from './template-fixture.ts';
import { formatCpuset, parseCpuset, pointDisks, templateDisks, templateForHost } from './template-host.ts';

const cleaned = cleanTemplate(SOURCE_XML, { name: 'copy' });

describe('cpusets', () => {
  it('parses and formats libvirt CPU lists', () => {
    expect(parseCpuset('0-3,8')).toEqual([0, 1, 2, 3, 8]);
    expect(parseCpuset(' 5 ')).toEqual([5]);
    expect(formatCpuset([8, 0, 1, 2, 3, 3])).toBe('0-3,8');
    expect(formatCpuset([1, 3, 5])).toBe('1,3,5');
  });

  it('refuses what is not a CPU list, naming the attribute', () => {
    expect(() => parseCpuset('all', 'EMULATOR_CPUS')).toThrow(/EMULATOR_CPUS: "all" is not a CPU list/);
    expect(() => parseCpuset('3-1')).toThrow(/range 3-1 is reversed/);
    expect(() => parseCpuset('1,,2')).toThrow(/not a CPU list/);
  });
});

describe('templateForHost', () => {
  it('EMULATOR_CPUS pins the emulator threads, whatever the VM pins', () => {
    const { xml } = templateForHost(cleaned, { emulatorCpus: '0', hostCpus: 2 });
    expect(xml).toContain('<emulatorpin cpuset="0"/>');
    expect(xml.match(/<emulatorpin /g)).toHaveLength(1);
  });

  it('without EMULATOR_CPUS, a pinned VM is pinned on this host and its emulator follows its vCPUs', () => {
    const { xml } = templateForHost(cleaned, { hostCpus: 2 });
    expect(xml).toContain('<vcpupin vcpu="0" cpuset="0"/>');
    expect(xml).toContain('<vcpupin vcpu="1" cpuset="1"/>');
    expect(xml).toContain('<emulatorpin cpuset="0-1"/>');
    // More vCPUs than host CPUs wrap around instead of naming CPUs the host lacks.
    const one = templateForHost(cleaned, { hostCpus: 1 }).xml;
    expect(one).toContain('<vcpupin vcpu="1" cpuset="0"/>');
    expect(one).toContain('<emulatorpin cpuset="0"/>');
  });

  it('an unpinned VM without EMULATOR_CPUS gets no pinning at all', () => {
    const plain = cleanTemplate('<domain type="kvm"><name>a</name><vcpu>2</vcpu><devices/></domain>', {
      name: 'b',
    });
    const { xml } = templateForHost(plain, { hostCpus: 4 });
    expect(xml).not.toContain('pin');
    expect(templateForHost(plain, { hostCpus: 4, emulatorCpus: '2-3' }).xml).toContain(
      '<cputune><emulatorpin cpuset="2-3"/></cputune>',
    );
  });

  it('refuses an EMULATOR_CPUS naming CPUs the host lacks, or that is no cpuset', () => {
    expect(() => templateForHost(cleaned, { emulatorCpus: '4-5', hostCpus: 2 })).toThrow(
      /EMULATOR_CPUS: 4-5 names CPUs this host does not have \(it has 2\)/,
    );
    expect(() => templateForHost(cleaned, { emulatorCpus: 'x', hostCpus: 2 })).toThrow(/EMULATOR_CPUS/);
  });

  it('leaves out PCI devices with no host device, and says so', () => {
    const { xml, notes } = templateForHost(cleaned, { hostCpus: 2 });
    expect(xml).not.toContain('<hostdev mode="subsystem" type="pci"');
    expect(xml).not.toContain('<interface type="hostdev"');
    expect(xml).toContain('<hostdev mode="subsystem" type="usb"');
    expect(notes).toEqual([
      expect.stringContaining('PCI interface 0000:07:10.1'),
      expect.stringContaining('PCI hostdev 0000:06:02.0'),
    ]);
  });
});

describe('pointDisks', () => {
  const twoDisks = `<domain type='kvm'><name>a</name><devices>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/iso/x.iso'/><target dev='sda'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/old/a.raw'/><backingStore type='file'><format type='raw'/><source file='/old/base'/></backingStore><target dev='vda'/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='rbd' name='pool/vm-b'><host name='mon1'/></source><auth username='x'><secret type='ceph' uuid='u'/></auth><target dev='vdb'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/old/c.qcow2'/><target dev='vdc'/></disk>
  </devices></domain>`;

  it('points restored disks (numbered as the inventory: cdroms skipped, rbd counted) at qcow2 files', () => {
    const xml = pointDisks(
      twoDisks,
      new Map([
        [0, '/new/x-disk-0.qcow2'],
        [1, '/new/x-disk-1.qcow2'],
      ]),
    );
    expect(xml).toContain('<source file="/new/x-disk-0.qcow2"/>');
    expect(xml).toContain('<source file="/new/x-disk-1.qcow2"/>');
    expect(xml).not.toContain('/old/a.raw');
    expect(xml).not.toContain('backingStore');
    expect(xml).not.toContain('pool/vm-b');
    expect(xml).not.toContain('<auth');
    expect(xml).toContain('<source file="/iso/x.iso"/>');
    expect(xml.match(/type="qcow2"/g)).toHaveLength(2);
  });

  it('removes disks that were not restored: two VMs must never share a disk', () => {
    const xml = pointDisks(twoDisks, new Map([[2, '/new/x-disk-2.qcow2']]));
    expect(xml).not.toContain('/old/a.raw');
    expect(xml).not.toContain('pool/vm-b');
    expect(xml).toContain('/new/x-disk-2.qcow2');
    expect(xml).toContain('/iso/x.iso');
  });

  it('refuses a disk id the template does not have', () => {
    expect(() => pointDisks(twoDisks, new Map([[3, '/x']]))).toThrow(/disk 3 is not part of the template/);
  });
});

describe('templateDisks', () => {
  it('numbers disks as the inventory does and marks the volatile ones', () => {
    const xml = SOURCE_XML.replace(
      '</devices>',
      `<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/v/scratch.raw'/><target dev='vdb'/></disk></devices>`,
    );
    expect(templateDisks(xml)).toEqual([
      { id: 0, target: 'vda', volatile: false },
      { id: 1, target: 'vdb', volatile: true },
    ]);
  });
});
