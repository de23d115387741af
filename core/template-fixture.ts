/** Test data of the template unit tests (core/template*.test.ts). */

/** A domain as `virsh dumpxml --inactive` writes it, with the parts restores must clean. */
export const SOURCE_XML = `<domain type='kvm' id='7'>
  <name>web-1</name>
  <uuid>7e4aaa11-a07f-423f-bbc1-b900ca09b7cc</uuid>
  <metadata>
    <lifeboat:vm xmlns:lifeboat="urn:lifeboat:vm:1">
      <lifeboat:disk target="vdb" volatile="yes"/>
    </lifeboat:vm>
  </metadata>
  <memory unit='KiB'>131072</memory>
  <vcpu placement='static' cpuset='2-3'>2</vcpu>
  <cputune>
    <shares>1024</shares>
    <vcpupin vcpu='0' cpuset='2'/>
    <vcpupin vcpu='1' cpuset='3'/>
    <emulatorpin cpuset='2-3'/>
    <iothreadpin iothread='1' cpuset='3'/>
  </cputune>
  <numatune>
    <memory mode='strict' nodeset='1'/>
    <memnode cellid='0' mode='strict' nodeset='1'/>
  </numatune>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <cpu mode='host-passthrough'>
    <topology sockets='1' dies='1' cores='2' threads='1'/>
    <numa>
      <cell id='0' cpus='0-1' memory='131072' unit='KiB'/>
    </numa>
  </cpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web-1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'>
        <parameter name='IP' value='10.0.0.5'/>
        <parameter name='CTRL_IP_LEARNING' value='none'/>
      </filterref>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:11:22:33'/>
      <ip family='ipv4' address='10.0.2.15' prefix='24'/>
      <ip family='ipv6' address='fd00::5' prefix='64'/>
      <model type='e1000'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <driver name='vfio'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x07' slot='0x10' function='0x1'/>
      </source>
      <vlan><tag id='42'/></vlan>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0x06' slot='0x02' function='0x0'/>
      </source>
      <rom bar='on'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'>
      <source>
        <vendor id='0x0781'/>
        <product id='0x5567'/>
        <address bus='1' device='4'/>
      </source>
    </hostdev>
  </devices>
</domain>
`;
