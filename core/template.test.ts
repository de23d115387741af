import { describe, expect, it } from 'vitest';
import { cleanTemplate } from './template.ts';
import { SOURCE_XML } from './template-fixture.ts';
import { parseXml, rootElement } from './template-xml.ts';

const clean = (options: Partial<Parameters<typeof cleanTemplate>[1]> = {}) =>
  cleanTemplate(SOURCE_XML, { name: 'web-1-restored', ...options });

describe('cleanTemplate: always', () => {
  it('gives the new name, drops the uuid and the live id, and stays parseable XML', () => {
    const xml = clean();
    expect(xml).toContain('<name>web-1-restored</name>');
    expect(xml).not.toContain('<uuid>');
    expect(xml).not.toContain('7e4aaa11');
    expect(xml).toMatch(/^<domain type="kvm">/);
    expect(() => rootElement(parseXml(xml), 'domain')).not.toThrow();
  });

  it('keeps what it does not clean: disks, memory, os, metadata, the volatile mark', () => {
    const xml = clean();
    expect(xml).toContain('<source file="/var/lib/libvirt/images/web-1.qcow2"/>');
    expect(xml).toContain('<memory unit="KiB">131072</memory>');
    expect(xml).toContain('<lifeboat:disk target="vdb" volatile="yes"/>');
    expect(xml).toContain('<shares>1024</shares>');
  });

  it('refuses a name libvirt or a file system would choke on', () => {
    expect(() => clean({ name: '../etc' })).toThrow(/name: "..\/etc" is not a valid VM name/);
    expect(() => clean({ name: 'a b' })).toThrow(/not a valid VM name/);
  });

  it('refuses text that is not a domain', () => {
    expect(() => cleanTemplate('<network><name>x</name></network>', { name: 'x' })).toThrow(/no <domain>/);
    expect(() => cleanTemplate('<domain', { name: 'x' })).toThrow(/template: the domain XML does not parse/);
  });

  it('gives a name to a domain that had none', () => {
    expect(cleanTemplate('<domain><uuid>1</uuid></domain>', { name: 'x' })).toBe(
      '<domain><name>x</name></domain>',
    );
  });

  it('NUMA: removes host node ids and CPU sets, keeps the guest topology, records the pin policy', () => {
    const xml = clean();
    expect(xml).not.toContain('numatune');
    expect(xml).not.toContain('nodeset');
    expect(xml).not.toContain('vcpupin');
    expect(xml).not.toContain('emulatorpin');
    expect(xml).not.toContain('iothreadpin');
    expect(xml).toContain('<vcpu placement="static">2</vcpu>');
    expect(xml).toContain('<topology sockets="1" dies="1" cores="2" threads="1"/>');
    expect(xml).toContain('<cell id="0" cpus="0-1" memory="131072" unit="KiB"/>');
    expect(xml).toContain('<lifeboat:pin_policy>PINNED</lifeboat:pin_policy>');
  });

  it('NUMA: an emptied <cputune> goes, and an unpinned VM gets no pin policy', () => {
    const xml = cleanTemplate(
      `<domain type='kvm'><name>a</name><cputune><emulatorpin cpuset='1'/></cputune><devices/></domain>`,
      { name: 'b' },
    );
    expect(xml).toBe(
      '<domain type="kvm"><name>b</name></domain>'.replace('</domain>', '<devices/></domain>'),
    );
  });

  it('PCI: removes the host address, keeps the device, driver, ROM and guest address, notes the old address', () => {
    const xml = clean();
    expect(xml).not.toContain("bus='0x06'");
    expect(xml).not.toContain('bus="0x06"');
    expect(xml).toContain('<hostdev mode="subsystem" type="pci" managed="yes">');
    expect(xml).toContain('<rom bar="on"/>');
    expect(xml).toContain('<address type="pci" domain="0x0000" bus="0x00" slot="0x07" function="0x0"/>');
    expect(xml).toContain('<lifeboat:pci device="hostdev" address="0000:06:02.0">');
    // A PCI NIC: its host VF address goes too, the vfio driver and VLAN stay.
    expect(xml).not.toContain('bus="0x07"');
    expect(xml).toContain('<lifeboat:pci device="interface" address="0000:07:10.1">');
    expect(xml).toContain('<vlan><tag id="42"/></vlan>');
  });

  it('USB: a device with vendor and product ids loses its host bus address (libvirt selects by ids)', () => {
    const xml = clean();
    expect(xml).toContain('<vendor id="0x0781"/>');
    expect(xml).toContain('<product id="0x5567"/>');
    expect(xml).not.toContain('device="4"');
  });

  it('without NO_IP and NO_NIC, NICs keep MACs and IPs', () => {
    const xml = clean();
    expect(xml.match(/<interface /g)).toHaveLength(3);
    expect(xml).toContain('52:54:00:aa:bb:cc');
    expect(xml).toContain('10.0.2.15');
    expect(xml).toContain('<parameter name="IP" value="10.0.0.5"/>');
  });
});

describe('cleanTemplate: NO_IP and NO_NIC', () => {
  it('NO_IP keeps every NIC and its network, drops MACs, IPv4/IPv6 addresses and filter IP parameters', () => {
    const xml = clean({ noIp: true });
    expect(xml.match(/<interface /g)).toHaveLength(3);
    expect(xml).toContain('<source network="default"/>');
    expect(xml).toContain('<model type="virtio"/>');
    expect(xml).not.toMatch(/<mac /);
    expect(xml).not.toContain('10.0.2.15');
    expect(xml).not.toContain('fd00::5');
    expect(xml).not.toContain('10.0.0.5');
    expect(xml).toContain('<parameter name="CTRL_IP_LEARNING" value="none"/>');
    // The PCI NIC keeps its VLAN (network config that is not an address).
    expect(xml).toContain('<tag id="42"/>');
  });

  it('NO_NIC removes every interface, PCI NICs included, and nothing else', () => {
    const xml = clean({ noNic: true });
    expect(xml).not.toContain('<interface');
    expect(xml).toContain('<hostdev mode="subsystem" type="pci"');
    expect(xml).toContain('<disk type="file" device="disk">');
    // No blank lines are left where the interfaces were.
    expect(xml).not.toMatch(/\n\s*\n/);
  });
});
