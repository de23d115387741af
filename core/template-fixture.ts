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

/**
 * What someone who could write to a backup might store as its vm.xml: every kind of host file,
 * device, socket and program a libvirt domain can name (core/template-allow.ts drops them).
 */
export const HOSTILE_XML = `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' xmlns:q2='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>evil</name>
  <memory unit='KiB'>131072</memory>
  <vcpu>1</vcpu>
  <resource><partition>/machine/../../</partition></resource>
  <sysinfo type='fwcfg'><entry name='opt/x'>text</entry><entry name='opt/y' file='/etc/shadow'/></sysinfo>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <loader readonly='yes' type='pflash'>/root/evil.fd</loader>
    <nvram>/var/lib/libvirt/qemu/nvram/web-1_VARS.fd</nvram>
    <kernel>/boot/vmlinuz</kernel>
    <initrd>/boot/initrd.img</initrd>
    <cmdline>init=/bin/sh</cmdline>
    <acpi><table type='slic'>/etc/shadow</table></acpi>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/tmp/evil-qemu</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/web-1.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/sda'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdc' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='/etc/shadow'/><target dev='vdd' bus='virtio'/></disk>
    <disk type='network' device='disk'><driver name='qemu' type='vmdk'/><source protocol='nbd' name='x'><host transport='unix' socket='/run/evil.sock'/></source><target dev='vde' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/root/.ssh/id_rsa'/><target dev='sda' bus='sata'/><readonly/></disk>
    <disk type='block' device='lun'><source dev='/dev/sg0'/><target dev='sdb' bus='scsi'/></disk>
    <filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='root'/></filesystem>
    <hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
    <hostdev mode='capabilities' type='storage'><source><block>/dev/sda</block></source></hostdev>
    <redirdev bus='usb' type='tcp'><source mode='connect' host='10.0.0.1' service='4000'/></redirdev>
    <smartcard mode='passthrough' type='unix'><source mode='bind' path='/run/sc.sock'/></smartcard>
    <shmem name='evil'><model type='ivshmem-plain'/></shmem>
    <interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/><model type='virtio'/><script path='/tmp/evil.sh'/><rom file='/etc/shadow'/></interface>
    <interface type='ethernet'><target dev='tap9'/><script path='/tmp/evil.sh'/><downscript path='/tmp/down.sh'/><backend tap='/dev/evil' vhost='/dev/evil2'/></interface>
    <interface type='hostdev' managed='yes'><source><address type='pci' domain='0' bus='6' slot='2' function='0'/></source></interface>
    <interface type='vhostuser'><source type='unix' path='/run/vhost.sock' mode='client'/></interface>
    <controller type='usb' model='qemu-xhci'/>
    <input type='tablet' bus='usb'/>
    <input type='evdev'><source dev='/dev/input/event0'/></input>
    <graphics type='vnc' socket='/etc/evil.sock'/>
    <graphics type='sdl' display=':0' xauth='/root/.Xauthority'/>
    <video><model type='virtio'/></video>
    <serial type='file'><source path='/etc/passwd'/><target port='0'/></serial>
    <serial type='pty'><log file='/etc/cron.d/evil' append='on'/><target port='1'/></serial>
    <serial type='unix'><source mode='bind' path='/run/evil.sock'/><target port='2'/></serial>
    <serial type='dev'><source path='/dev/ttyS0'/><target port='3'/></serial>
    <serial type='tcp'><source mode='bind' host='0.0.0.0' service='2445'/><target port='4'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><source mode='bind' path='/etc/evil-agent'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <channel type='file'><source path='/etc/evil'/><target type='virtio' name='x'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <rng model='virtio'><backend model='random'>/dev/sda</backend></rng>
    <rng model='virtio'><backend model='egd' type='udp'><source mode='bind' service='1234'/></backend></rng>
    <memballoon model='virtio'/>
    <watchdog model='i6300esb' action='reset'/>
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'><encryption secret='6dd3e4a5-1d76-44ce-961f-f119f5aad935'/></backend></tpm>
    <tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>
    <lease><lockspace>x</lockspace><key>y</key><target path='/etc/lease'/></lease>
  </devices>
  <seclabel type='none'/>
  <qemu:commandline><qemu:arg value='-drive'/><qemu:arg value='file=/etc/shadow'/></qemu:commandline>
  <q2:override><q2:device alias='x'/></q2:override>
</domain>`;
