/**
 * The in-place swap on a real (shut-off) libvirt domain: every disk swapped or none, safety
 * copies put back on failure (and after a crash, from the work folder's record), removed on
 * success, and a domain that is not shut off refused before anything moves.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInPlace, incomingPath, safetyPath, swapDisks, undoInPlace } from '#runner/tasks/in-place.ts';
import { createTestVm, type TestVm } from '../helpers/libvirt.ts';

let vm: TestVm;
let work: string;

beforeAll(async () => {
  vm = await createTestVm({
    name: 'lb-inplace-unit',
    disks: [
      { sizeMiB: 1, format: 'raw' },
      { sizeMiB: 1, format: 'raw' },
    ],
    running: false,
    nic: false,
  });
  work = await mkdtemp(join(tmpdir(), 'lifeboat-inplace-'));
}, 120_000);

afterAll(async () => {
  await vm?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

const disks = () => vm.disks.map((d, id) => ({ id, source: d.path, format: 'raw' as const }));

async function reset(): Promise<void> {
  for (const [i, d] of vm.disks.entries()) {
    await writeFile(d.path, `old-${i}`);
    await rm(incomingPath(d.path), { force: true });
    await rm(safetyPath(d.path), { force: true });
  }
}

describe('in-place swap', () => {
  it('swaps every disk and removes the safety copies', async () => {
    await reset();
    for (const [i, d] of vm.disks.entries()) await writeFile(incomingPath(d.path), `new-${i}`);
    await swapDisks(vm.domain, disks(), work);
    expect(await Promise.all(vm.disks.map((d) => readFile(d.path, 'utf8')))).toEqual(['new-0', 'new-1']);
    expect((await readdir(vm.dir)).sort()).toEqual(['domain.xml', 'vda.raw', 'vdb.raw']);
  });

  it('puts every old disk back when one cannot be swapped in', async () => {
    await reset();
    // Only the first disk was staged: the second rename fails after the first swap.
    await writeFile(incomingPath(vm.disks[0]?.path as string), 'new-0');
    await expect(swapDisks(vm.domain, disks(), work)).rejects.toThrow(/ENOENT/);
    expect(await Promise.all(vm.disks.map((d) => readFile(d.path, 'utf8')))).toEqual(['old-0', 'old-1']);
    expect((await readdir(vm.dir)).sort()).toEqual(['domain.xml', 'vda.raw', 'vdb.raw']);
  });

  it('after a crash mid-swap, undoInPlace puts the safety copies back from the record', async () => {
    await reset();
    const [a] = vm.disks as [TestVm['disks'][number]];
    // What a runner killed between the two renames of disk 0 leaves.
    await writeFile(join(work, 'in-place.json'), JSON.stringify({ disks: vm.disks.map((d) => d.path) }));
    await writeFile(safetyPath(a.path), 'old-0');
    await rm(a.path);
    await writeFile(incomingPath(a.path), 'new-0');
    expect(await undoInPlace(work)).toEqual([`put back ${a.path}`]);
    expect(await readFile(a.path, 'utf8')).toBe('old-0');
    expect((await readdir(vm.dir)).sort()).toEqual(['domain.xml', 'vda.raw', 'vdb.raw']);
    expect(await undoInPlace(work)).toEqual([]);
  });

  it('refuses before anything moves: a leftover safety copy, a missing disk, an unknown domain', async () => {
    await reset();
    await writeFile(safetyPath(vm.disks[1]?.path as string), 'old');
    await expect(checkInPlace(vm.domain, disks())).rejects.toThrow(/left from an earlier in-place restore/);
    await rm(safetyPath(vm.disks[1]?.path as string));
    await expect(
      checkInPlace(vm.domain, [{ id: 0, source: join(vm.dir, 'nope.raw'), format: 'raw' }]),
    ).rejects.toThrow(/nope.raw does not exist/);
    await expect(checkInPlace('lb-no-such-domain', disks())).rejects.toThrow(/does not exist on this host/);
    await expect(checkInPlace(vm.domain, disks())).resolves.toBeUndefined();
  });
});
