/**
 * Defining a restored domain on real libvirt: pinned for this host, never over an existing
 * domain, and undefined again when asked to start and the start fails.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanTemplate } from '#core/template.ts';
import { HOSTILE_XML } from '#core/template-fixture.ts';
import { pointDisks } from '#core/template-host.ts';
import { defineDomain, hostCpuCount } from '#runner/tasks/define-domain.ts';
import { ensureLibvirt, kvmUsable, removeTestVm, virsh } from '../helpers/libvirt.ts';

const NAME = 'lb-define-unit';
const HOSTILE = 'lb-define-hostile';
let work: string;
let type: string;

beforeAll(async () => {
  await ensureLibvirt();
  await removeTestVm(NAME);
  await removeTestVm(HOSTILE);
  type = (await kvmUsable()) ? 'kvm' : 'qemu';
  work = await mkdtemp(join(tmpdir(), 'lifeboat-define-'));
}, 120_000);

afterAll(async () => {
  await removeTestVm(NAME);
  await removeTestVm(HOSTILE);
  if (work) await rm(work, { recursive: true, force: true });
});

const xml = (
  disk: string,
) => `<domain type="${type}"><name>${NAME}</name><memory unit="MiB">64</memory><vcpu>1</vcpu>
<os><type arch="x86_64" machine="pc">hvm</type></os>
<devices><disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="${disk}"/><target dev="vda" bus="virtio"/></disk></devices></domain>`;

describe('defineDomain', () => {
  it('a start that fails leaves no domain behind, and no XML file in the work folder', async () => {
    await expect(
      defineDomain(xml('/nonexistent/lb-define.qcow2'), {
        name: NAME,
        start: true,
        emulatorCpus: '0',
        workDir: work,
        diskFiles: ['/nonexistent/lb-define.qcow2'],
      }),
    ).rejects.toThrow(/start/);
    expect((await virsh('list', '--all', '--name')).split('\n').map((n) => n.trim())).not.toContain(NAME);
    expect(await readdir(work)).toEqual([]);
  });

  it('defines (not started) with the emulator pinned, then refuses the same name', async () => {
    const defined = await defineDomain(xml('/nonexistent/lb-define.qcow2'), {
      name: NAME,
      start: false,
      emulatorCpus: '0',
      workDir: work,
      diskFiles: ['/nonexistent/lb-define.qcow2'],
    });
    expect(defined).toEqual({ name: NAME, started: false, notes: [] });
    expect((await virsh('domstate', NAME)).trim()).toBe('shut off');
    expect(await virsh('dumpxml', NAME)).toContain("<emulatorpin cpuset='0'/>");
    await expect(
      defineDomain(xml('/x.qcow2'), {
        name: NAME,
        start: false,
        emulatorCpus: null,
        workDir: work,
        diskFiles: [],
      }),
    ).rejects.toThrow(`a domain named "${NAME}" already exists on this host`);
    expect(await hostCpuCount()).toBeGreaterThan(0);
  });

  it('a hostile template stored in a backup is defined with every host file, device, socket and program dropped', async () => {
    const disk = join(work, `${HOSTILE}-disk-0.qcow2`);
    // No swtpm on the test machines: libvirt would refuse the (allowed) emulated TPM.
    const stored = HOSTILE_XML.replace("type='kvm'", `type='${type}'`).replace(
      /<tpm model='tpm-crb'>.*?<\/tpm>/,
      '',
    );
    // Pointed but not allow-listed: defineDomain checks again right before virsh define.
    const xml = pointDisks(cleanTemplate(stored, { name: HOSTILE }), new Map([[0, disk]]));
    const defined = await defineDomain(xml, {
      name: HOSTILE,
      start: false,
      emulatorCpus: null,
      workDir: work,
      diskFiles: [disk],
    });
    expect(defined.notes).toEqual(
      expect.arrayContaining([
        'dropped <qemu:commandline>: it passes raw options to QEMU',
        "dropped <filesystem type='mount'> /: it shares a host folder with the guest",
        "dropped <hostdev type='usb'>: it passes a host device through",
        "dropped <serial type='file'> /etc/passwd: only pty consoles and serial ports are restored (others are host files or sockets)",
        "dropped <disk type='block' device='disk'> vdc /dev/sdb: only the restored disk files are attached (this one names storage of the original host)",
        'dropped <emulator> /tmp/evil-qemu: a custom emulator is a host program; libvirt chooses this host’s QEMU',
      ]),
    );
    const live = await virsh('dumpxml', '--inactive', HOSTILE);
    for (const bad of [
      'qemu:commandline',
      '/etc/shadow',
      '/etc/passwd',
      '/dev/sd',
      '/tmp/evil',
      '<filesystem',
      '<hostdev',
      "type='file'>",
      "<seclabel type='none'",
    ]) {
      expect(live, bad).not.toContain(bad);
    }
    expect(live).toContain(`<source file='${disk}'/>`);
    expect(live).toMatch(/<emulator>\/usr\/bin\/(qemu-system-x86_64|kvm)<\/emulator>/);
  });
});

describe('names virsh would read as another domain', () => {
  // undefineDomain refuses them too (core/domain-name.ts), but is not called here with one: code
  // without that check would destroy whichever domain of this shared host has id 1.
  it('are refused before any virsh call', async () => {
    for (const name of ['1', '-c', '7e4aaa11-a07f-423f-bbc1-b900ca09b7cc']) {
      await expect(
        defineDomain(xml('/x.qcow2'), {
          name,
          start: false,
          emulatorCpus: null,
          workDir: work,
          diskFiles: [],
        }),
      ).rejects.toMatchObject({ name: 'ValidationError' });
    }
  });
});
