import { describe, expect, it } from 'vitest';
import { cleanTemplate } from './template.ts';
import { allowTemplate } from './template-allow.ts';
import { HOSTILE_XML } from './template-fixture.ts';
import { pointDisks } from './template-host.ts';

const RESTORED = '/var/lib/lifeboat/restores/copy/copy-disk-0.qcow2';

function restoreTemplate(xml: string) {
  const pointed = pointDisks(cleanTemplate(xml, { name: 'copy' }), new Map([[0, RESTORED]]));
  return allowTemplate(pointed, [RESTORED]);
}

describe('allowTemplate', () => {
  const { xml, notes } = restoreTemplate(HOSTILE_XML);

  it('drops every host file, device, socket and program a stored template names', () => {
    for (const bad of [
      'qemu:commandline',
      'q2:override',
      '/etc/shadow',
      '/etc/passwd',
      '/dev/sda',
      '/dev/sdb',
      '/dev/sg0',
      '/tmp/evil',
      '/root/',
      '/boot/',
      '/etc/cron.d',
      '/etc/evil',
      '/run/',
      '/dev/input',
      '/dev/tpm0',
      '/dev/evil',
      '/img/web-1.qcow2',
      'init=/bin/sh',
      '<filesystem',
      '<hostdev',
      '<redirdev',
      '<smartcard',
      '<shmem',
      '<lease',
      '<seclabel',
      '<resource',
      '<emulator',
      'type="hostdev"',
      'vhostuser',
      'type="file"><source',
      'sdl',
      'egd',
      'web-1_VARS',
      'encryption',
    ]) {
      expect(xml, bad).not.toContain(bad);
    }
  });

  it('keeps the restored disk and the harmless devices', () => {
    expect(xml).toContain(`<source file="${RESTORED}"/>`);
    expect(xml).toContain('<target dev="vda" bus="virtio"/>');
    // The CD-ROM drive stays, empty.
    expect(xml).toMatch(
      /<disk type="file" device="cdrom"><driver name="qemu" type="raw"\/><target dev="sda" bus="sata"\/><readonly\/><\/disk>/,
    );
    expect(xml).toContain(
      '<interface type="network"><mac address="52:54:00:00:00:01"/><source network="default"/><model type="virtio"/></interface>',
    );
    expect(xml).toContain('<interface type="ethernet"><target dev="tap9"/></interface>');
    for (const kept of [
      '<controller type="usb" model="qemu-xhci"/>',
      '<input type="tablet" bus="usb"/>',
      '<graphics type="vnc"/>',
      '<video><model type="virtio"/></video>',
      '<serial type="pty"><target port="1"/></serial>',
      '<console type="pty"><target type="serial" port="0"/></console>',
      '<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>',
      '<rng model="virtio"><backend model="random">/dev/urandom</backend></rng>',
      '<memballoon model="virtio"/>',
      '<watchdog model="i6300esb" action="reset"/>',
      '<tpm model="tpm-crb"><backend type="emulator" version="2.0"/></tpm>',
      '<entry name="opt/x">text</entry>',
      '<boot dev="hd"/>',
      '<type arch="x86_64" machine="pc">hvm</type>',
    ]) {
      expect(xml).toContain(kept);
    }
    expect(xml.match(/<rng /g)).toHaveLength(1);
    expect(xml.match(/<serial /g)).toHaveLength(1);
    expect(xml.match(/<disk /g)).toHaveLength(2);
  });

  it('says what it dropped, one note each', () => {
    const expected = [
      'dropped <qemu:commandline>: it passes raw options to QEMU',
      'dropped <q2:override>: it passes raw options to QEMU',
      'dropped <seclabel>: a restored VM runs under this host’s default confinement',
      'dropped <resource>: a restored VM gets this host’s default cgroup placement',
      'dropped <sysinfo> entry opt/y read from host file /etc/shadow',
      'dropped <os><loader> /root/evil.fd: only firmware under /usr/share/ is used',
      'dropped <os><nvram> /var/lib/libvirt/qemu/nvram/web-1_VARS.fd: libvirt makes the restored VM a fresh variable store',
      'dropped <os><kernel> /boot/vmlinuz: QEMU would read it from this host',
      'dropped <os><initrd> /boot/initrd.img: QEMU would read it from this host',
      'dropped <os><acpi> /etc/shadow: QEMU would read it from this host',
      'dropped <emulator> /tmp/evil-qemu: a custom emulator is a host program; libvirt chooses this host’s QEMU',
      "dropped <disk type='block' device='disk'> vdc /dev/sdb: only the restored disk files are attached (this one names storage of the original host)",
      "dropped <disk type='file' device='disk'> vdd /etc/shadow: only the restored disk files are attached (this one names storage of the original host)",
      "dropped <disk type='network' device='disk'> vde x: only the restored disk files are attached (this one names storage of the original host)",
      'ejected cdrom sda (was /root/.ssh/id_rsa): its medium is of the original host',
      "dropped <disk type='block' device='lun'> sdb /dev/sg0: a lun passes a host device through",
      "dropped <filesystem type='mount'> /: it shares a host folder with the guest",
      "dropped <hostdev type='usb'>: it passes a host device through",
      "dropped <hostdev type='storage'>: it passes a host device through",
      "dropped <redirdev type='tcp'>: it redirects a host USB device or socket",
      "dropped <smartcard type='unix'> /run/sc.sock: it reads a host smartcard, certificates or socket",
      'dropped <shmem> evil: it maps host shared memory',
      'interface 52:54:00:00:00:01: its script /tmp/evil.sh removed (it would run as root on this host)',
      'interface 52:54:00:00:00:01: ROM file /etc/shadow removed (a host file)',
      'interface ethernet: its script /tmp/evil.sh removed (it would run as root on this host)',
      'interface ethernet: its downscript /tmp/down.sh removed (it would run as root on this host)',
      'interface ethernet: backend tap /dev/evil removed (a host path)',
      'interface ethernet: backend vhost /dev/evil2 removed (a host path)',
      "dropped <interface type='hostdev'>: a hostdev interface uses a host device or socket",
      "dropped <interface type='vhostuser'> /run/vhost.sock: a vhostuser interface uses a host device or socket",
      "dropped <input type='evdev'> /dev/input/event0: it reads a host input device",
      'graphics vnc: socket /etc/evil.sock removed (a host path)',
      "dropped <graphics type='sdl'>: only vnc, spice and egl-headless displays are restored",
      "dropped <serial type='file'> /etc/passwd: only pty consoles and serial ports are restored (others are host files or sockets)",
      'serial: <log> /etc/cron.d/evil removed',
      "dropped <serial type='unix'> /run/evil.sock: only pty consoles and serial ports are restored (others are host files or sockets)",
      "dropped <serial type='dev'> /dev/ttyS0: only pty consoles and serial ports are restored (others are host files or sockets)",
      "dropped <serial type='tcp'>: only pty consoles and serial ports are restored (others are host files or sockets)",
      'channel org.qemu.guest_agent.0: socket path /etc/evil-agent removed (libvirt picks one of its own)',
      "dropped <channel type='file'> /etc/evil: only spice, vdagent and virtio unix channels are restored (others are host files or sockets)",
      "dropped <rng model='virtio'>: only a builtin, /dev/urandom or /dev/random backend is restored",
      'tpm backend: <encryption> removed',
      "dropped <tpm model='tpm-tis'>: only an emulated TPM is restored (passthrough and external ones are host devices or sockets)",
      'dropped <lease>: it names a host lock file',
    ];
    for (const note of expected) expect(notes).toContain(note);
    // cmdline goes with the kernel; the second rng too.
    expect(notes.filter((n) => n.startsWith('dropped <rng'))).toHaveLength(2);
    expect(notes.some((n) => n.startsWith('dropped <os><cmdline>'))).toBe(true);
  });

  it('is idempotent: a rebuilt template passes unchanged, with no notes', () => {
    expect(allowTemplate(xml, [RESTORED])).toEqual({ xml, notes: [] });
  });

  it('drops a disk pointed at a file that is not one of the restored ones', () => {
    const again = allowTemplate(xml, ['/other.qcow2']);
    expect(again.xml).not.toContain(RESTORED);
    expect(again.notes).toEqual([
      `dropped <disk type='file' device='disk'> vda ${RESTORED}: only the restored disk files are attached (this one names storage of the original host)`,
    ]);
  });

  it('keeps firmware from /usr/share and a distribution emulator', () => {
    const ok = `<domain type='kvm'><name>a</name><os><type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader><nvram template='/usr/share/OVMF/OVMF_VARS.fd'/></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;
    expect(allowTemplate(ok, [])).toEqual({ xml: ok.replaceAll("'", '"'), notes: [] });
    const sneaky = ok.replace('/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/../../etc/shadow');
    expect(allowTemplate(sneaky, []).notes).toEqual([
      'dropped <os><loader> /usr/share/../../etc/shadow: only firmware under /usr/share/ is used',
    ]);
  });
});
