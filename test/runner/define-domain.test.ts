/**
 * Defining a restored domain on real libvirt: pinned for this host, never over an existing
 * domain, and undefined again when asked to start and the start fails.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineDomain, hostCpuCount } from '#runner/tasks/define-domain.ts';
import { ensureLibvirt, kvmUsable, removeTestVm, virsh } from '../helpers/libvirt.ts';

const NAME = 'lb-define-unit';
let work: string;
let type: string;

beforeAll(async () => {
  await ensureLibvirt();
  await removeTestVm(NAME);
  type = (await kvmUsable()) ? 'kvm' : 'qemu';
  work = await mkdtemp(join(tmpdir(), 'lifeboat-define-'));
}, 120_000);

afterAll(async () => {
  await removeTestVm(NAME);
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
    });
    expect(defined).toEqual({ name: NAME, started: false, notes: [] });
    expect((await virsh('domstate', NAME)).trim()).toBe('shut off');
    expect(await virsh('dumpxml', NAME)).toContain("<emulatorpin cpuset='0'/>");
    await expect(
      defineDomain(xml('/x.qcow2'), { name: NAME, start: false, emulatorCpus: null, workDir: work }),
    ).rejects.toThrow(`a domain named "${NAME}" already exists on this host`);
    expect(await hostCpuCount()).toBeGreaterThan(0);
  });
});
