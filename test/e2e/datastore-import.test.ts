/**
 * A catalog that can be rebuilt (issue 14): a real VM backed up through local mode to a restic
 * repository and to an rsync server; then the control plane and everything it knew is deleted
 * (its home, its database), a fresh one starts, the two datastores are declared again with the
 * same attributes, `lifeboat datastore import` finds each backup, and the images it rebuilt
 * restore the VM's exact bytes, every point of an increment chain too. A second import changes
 * nothing.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Image } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { createTestVm, guestWrite, type TestVm } from '../helpers/libvirt.ts';
import { type Sshd, startSshd } from '../helpers/sshd.ts';
import { backup, guestSha256, removeHome, restoreToFolder, type Stack, startStack } from './harness.ts';

const NAME = 'lb-e2e-h14import';
const CHAIN_NAME = 'lb-e2e-h14import-inc';
const MiB = 1024 * 1024;
const CHAIN_SIZE = 32 * MiB;
let stack: Stack | undefined;
let chainVm: TestVm;
let sshd: Sshd;
let scratch: string;
let source: TestVm;
const atBackup: string[] = [];

/** The datastores, declared again on the fresh control plane with the same attributes. */
const declarations = () =>
  [
    [
      'h14import-restic',
      'restic',
      { BASE_PATH: join(scratch, 'restic'), RESTIC_PASSWORD: 'h14import restic pw' },
    ],
    [
      'h14import-rsync',
      'rsync',
      { BASE_PATH: join(scratch, 'rsync'), RSYNC_HOST: `${sshd.host}:${sshd.port}` },
    ],
  ] as const;

async function declare(s: Stack): Promise<Datastore[]> {
  const out: Datastore[] = [];
  for (const [name, driver, attrs] of declarations()) {
    out.push(
      await s.json<Datastore>([
        'datastore',
        'create',
        '--name',
        name,
        '--driver',
        driver,
        ...Object.entries(attrs).flatMap(([k, v]) => ['--attr', `${k}=${v}`]),
      ]),
    );
  }
  return out;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-h14import-'));
  sshd = await startSshd();
  source = await createTestVm({
    name: NAME,
    disks: [
      { sizeMiB: 32, format: 'qcow2' },
      { sizeMiB: 8, format: 'raw' },
    ],
    running: false,
  });
  const [vda, vdb] = source.disks as [TestVm['disks'][number], TestVm['disks'][number]];
  await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 3M', vda.path] });
  await run({ file: 'qemu-io', args: ['-f', 'raw', '-c', 'write -P 0xa5 2M 1M', vdb.path] });
  atBackup.push(await guestSha256(vda.path, 'qcow2'), await guestSha256(vdb.path, 'raw'));
  chainVm = await createTestVm({
    name: CHAIN_NAME,
    disks: [{ sizeMiB: CHAIN_SIZE / MiB, format: 'qcow2' }],
    running: true,
    backupConfig: { MODE: 'INCREMENT' },
  });
}, 180_000);

afterAll(async () => {
  await source?.destroy().catch(() => {});
  await chainVm?.destroy().catch(() => {});
  if (stack) {
    await stack.stop();
    await removeHome(stack);
  }
  await sshd?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

describe('datastore import after the control plane was lost', () => {
  it('rebuilds the images from the datastores alone, and they restore the exact bytes', async () => {
    // The first control plane: back up to both datastores.
    const first = await startStack({ sshd });
    stack = first;
    const vm = await first.vm(NAME, 'POWEROFF');
    const backedUp: Image[] = [];
    const declared = await declare(first);
    for (const ds of declared) {
      const out = await backup(first, vm.id, ds.id);
      expect(out.code, out.stderr).toBe(0);
      expect(out.execution).toMatchObject({ kind: 'backup', state: 'SUCCEEDED' });
      backedUp.push(await first.json<Image>(['image', 'show', String(out.execution?.imageId)]));
    }
    // An increment chain on the restic datastore: a FULL and two increments, the guest's bytes
    // at each point known (a model of every write).
    const chainSource = await first.vm(CHAIN_NAME, 'RUNNING');
    const model = Buffer.alloc(CHAIN_SIZE);
    const pointShas: string[] = [];
    let chain: Image | undefined;
    for (const [point, byte] of [0x11, 0x22, 0x33].entries()) {
      await guestWrite(CHAIN_NAME, 'vda', point * 4 * MiB + 4096, MiB, byte);
      model.fill(byte, point * 4 * MiB + 4096, point * 4 * MiB + 4096 + MiB);
      pointShas.push(createHash('sha256').update(model).digest('hex'));
      const out = await backup(first, chainSource.id, declared[0]?.id as number);
      expect(out.execution?.state, out.stderr).toBe('SUCCEEDED');
      chain = await first.json<Image>(['image', 'show', String(out.execution?.imageId)]);
    }
    expect(chain?.increments.map((i) => i.type)).toEqual(['FULL', 'INCREMENT', 'INCREMENT']);
    // Lost: the control plane, its database and its home.
    await first.stop();
    await removeHome(first);
    stack = undefined;

    const fresh = await startStack({ sshd });
    stack = fresh;
    const again = await fresh.vm(NAME, 'POWEROFF');
    const datastores = await declare(fresh);
    expect(await fresh.json<Image[]>(['image', 'list'])).toEqual([]);

    for (const [i, ds] of datastores.entries()) {
      const imported = await fresh.cli(['datastore', 'import', String(ds.id), '--wait']);
      expect(imported.code, imported.stderr).toBe(0);
      // restic holds the chain too.
      const count = i === 0 ? 2 : 1;
      expect(imported.stdout).toContain(`${count} images imported, 0 already known`);
      const images = (await fresh.json<Image[]>(['image', 'list'])).filter(
        (im) => im.datastoreId === ds.id && im.vmId === vm.id,
      );
      expect(images).toHaveLength(1);
      const image = await fresh.json<Image>(['image', 'show', String(images[0]?.id)]);
      const before = backedUp[i] as Image;
      expect(image).toMatchObject({
        id: before.id,
        state: 'READY',
        mode: 'FULL',
        // Where the datastore keeps it (`<BASE_PATH>/<vmid>`): the fresh control plane may
        // number the same domain otherwise.
        vmId: before.vmId,
        // Its owner: the VM's, found by the domain UUID its template names.
        owner: again.owner,
        group: again.group,
        source: before.source,
        size: before.size,
      });
      expect(image.disks.map((d) => [d.id, d.file, d.size])).toEqual(
        before.disks.map((d) => [d.id, d.file, d.size]),
      );
      expect(image.template).toBe(before.template);
      expect(image.template).toContain(again.uuid);

      const name = `h14import-restored-${i}`;
      const dir = join(scratch, name);
      await restoreToFolder(fresh, image.id, { dir, name });
      for (const [id, sha] of atBackup.entries()) {
        expect(await guestSha256(join(dir, `${name}-disk-${id}.qcow2`), 'qcow2')).toBe(sha);
      }
      expect(await readFile(join(dir, `${name}.xml`), 'utf8')).toContain(`${name}-disk-1.qcow2`);

      const twice = await fresh.cli(['datastore', 'import', String(ds.id), '--wait']);
      expect(twice.code, twice.stderr).toBe(0);
      expect(twice.stdout).toContain(`0 images imported, ${count} already known`);
    }

    // The chain, rebuilt from the restic tags and the increments' file names: every point
    // restores the guest's bytes at that point.
    const rebuilt = await fresh.json<Image>(['image', 'show', String(chain?.id)]);
    expect(rebuilt).toMatchObject({
      mode: 'INCREMENT',
      state: 'READY',
      source: chain?.source,
      size: chain?.size,
    });
    expect(rebuilt.increments.map((p) => [p.id, p.parent, p.type, p.source])).toEqual(
      chain?.increments.map((p) => [p.id, p.parent, p.type, p.source]),
    );
    for (const [point, sha] of pointShas.entries()) {
      const name = `h14import-point-${point}`;
      const dir = join(scratch, name);
      await restoreToFolder(fresh, rebuilt.id, { dir, name, increment: point });
      expect(await guestSha256(join(dir, `${name}-disk-0.qcow2`), 'qcow2')).toBe(sha);
    }
    // Still the one VM, and the next backup gets an image id past the imported ones.
    const next = await backup(fresh, again.id, datastores[0]?.id as number);
    expect(next.execution).toMatchObject({ state: 'SUCCEEDED' });
    expect(next.execution?.imageId).toBeGreaterThan(Math.max(chain?.id ?? 0, ...backedUp.map((b) => b.id)));
  }, 900_000);
});
