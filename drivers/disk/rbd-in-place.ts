/**
 * In-place restore of rbd disks (the rbd driver's `prepareInPlace`): a point written over a
 * shut-off VM's own images. Each restored disk is imported first as a new image beside its image
 * (`<image>.lifeboat-restore`, same pool and namespace: the swap is two renames); only when every
 * disk is ready, and the domain is still shut off, is each old image renamed to
 * `<image>.lifeboat-safety` and the new one put in its place. When every disk is swapped the safety
 * images are removed (with their snapshots: the chain's base is gone, so the next increment starts
 * a new chain); when anything fails they are put back. A record in the work folder
 * (`rbd-in-place.json`) names the images, so {@link undoRbdInPlace} (part of reconcile) can put
 * a crashed runner's safety images back. Which images those are comes from libvirt on this host,
 * never from the task.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { Conflict, ValidationError } from '#core/errors.ts';
import { run } from '../exec.ts';
import { parseDomainXml } from './domain-xml.ts';
import type { InPlaceRestore, RestoredDisk } from './driver.ts';
import { readDomainInventory } from './inventory.ts';
import { imageSpec, parseImage, type Rbd, type RbdImage } from './rbd-cli.ts';
import { domainState, type ToolOptions } from './tools.ts';

const RECORD = 'rbd-in-place.json';
const INCOMING = '.lifeboat-restore';
const SAFETY = '.lifeboat-safety';

const Image = z.object({ pool: z.string(), namespace: z.string().optional(), image: z.string() });
const InPlaceRecord = z.object({
  v: z.literal(1),
  /** Set once the swap starts: from then on, reconcile puts safety images back. */
  swapping: z.boolean(),
  disks: z.array(z.object({ image: Image, clientId: z.string().optional() })),
});
type InPlaceRecord = z.infer<typeof InPlaceRecord>;

const named = (image: RbdImage, suffix: string): RbdImage => ({ ...image, image: `${image.image}${suffix}` });

async function readRecord(workDir: string): Promise<InPlaceRecord | undefined> {
  try {
    return InPlaceRecord.parse(JSON.parse(await readFile(join(workDir, RECORD), 'utf8')));
  } catch {
    return undefined;
  }
}

const writeRecord = (workDir: string, record: InPlaceRecord) =>
  writeFile(join(workDir, RECORD), JSON.stringify(record), { mode: 0o600 });

/** Removes an image and its snapshots; true when there was one. */
async function removeImage(rbd: Rbd, image: RbdImage, signal?: AbortSignal): Promise<boolean> {
  if (!(await rbd.exists(image, { signal }))) return false;
  await rbd.transfer(['snap', 'purge', '--no-progress', imageSpec(image)], { signal });
  await rbd.transfer(['rm', '--no-progress', imageSpec(image)], { signal });
  return true;
}

const rename = (rbd: Rbd, from: RbdImage, to: RbdImage, signal?: AbortSignal) =>
  rbd.run(['rename', imageSpec(from), imageSpec(to)], { signal });

/** See `DiskDriver.prepareInPlace`. */
export async function prepareRbdInPlace(
  domain: string,
  ids: readonly number[],
  workDir: string,
  rbd: Rbd,
  tool: ToolOptions,
): Promise<InPlaceRestore> {
  await assertShutOff(domain, tool);
  const inventory = await readDomainInventory(domain, tool);
  const live = parseDomainXml(inventory.template);
  const disks = ids.map((id) => {
    const disk = inventory.disks.find((d) => d.id === id);
    if (!disk) throw new ValidationError(`in-place restore: domain "${domain}" has no disk ${id}`);
    if (disk.format !== 'rbd') {
      throw new ValidationError(
        `in-place restore: disk ${id} (${disk.target}) of "${domain}" is not an rbd disk`,
      );
    }
    const user = live.disks.find((d) => d.target === disk.target)?.authUser;
    return { id, source: disk.source, image: parseImage(disk.source), rbd: rbd.as(user) };
  });
  for (const disk of disks) {
    if (await disk.rbd.exists(named(disk.image, SAFETY), { signal: tool.signal })) {
      throw new Conflict(
        `disk ${disk.id}: ${imageSpec(named(disk.image, SAFETY))} is left from an earlier in-place restore: check it and remove it first`,
      );
    }
    // An attempt that failed before its swap left nothing of value.
    await removeImage(disk.rbd, named(disk.image, INCOMING), tool.signal);
  }
  const record: InPlaceRecord = {
    v: 1,
    swapping: false,
    disks: disks.map((d) => ({
      image: d.image,
      ...(d.rbd.clientId === undefined ? {} : { clientId: d.rbd.clientId }),
    })),
  };
  // The runner hands out its task's work folder unmade.
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  await writeRecord(workDir, record);
  const staged = new Set<number>();
  let committed = false;
  const discard = async () => {
    if (!committed) {
      for (const disk of disks) await removeImage(disk.rbd, named(disk.image, INCOMING));
    }
    await rm(join(workDir, RECORD), { force: true });
  };
  return {
    disks: disks.map((d) => ({ id: d.id, source: d.source, format: 'rbd' })),
    async stage(id, write) {
      const disk = disks.find((d) => d.id === id);
      if (!disk) throw new ValidationError(`in-place restore: disk ${id} was not prepared`);
      const scratch = join(workDir, `restore-${id}.qcow2`);
      const raw = join(workDir, `restore-${id}.raw`);
      try {
        const restored: RestoredDisk = await write(scratch);
        await run(
          { file: 'qemu-img', args: ['convert', '-q', '-f', 'qcow2', '-O', 'raw', restored.path, raw] },
          { signal: tool.signal },
        );
        await rm(restored.path, { force: true });
        await removeImage(disk.rbd, named(disk.image, INCOMING), tool.signal);
        await disk.rbd.transfer(['import', '--no-progress', raw, imageSpec(named(disk.image, INCOMING))], {
          signal: tool.signal,
        });
        staged.add(id);
        return { ...restored, path: disk.source };
      } finally {
        await rm(scratch, { force: true });
        await rm(raw, { force: true });
      }
    },
    async commit() {
      const missing = disks.filter((d) => !staged.has(d.id));
      if (missing.length) throw new ValidationError(`in-place restore: disk ${missing[0]?.id} is not staged`);
      await assertShutOff(domain, tool);
      await writeRecord(workDir, { ...record, swapping: true });
      const swapped: typeof disks = [];
      try {
        for (const disk of disks) {
          await rename(disk.rbd, disk.image, named(disk.image, SAFETY));
          swapped.push(disk);
          await rename(disk.rbd, named(disk.image, INCOMING), disk.image);
        }
      } catch (error) {
        await putBack(record, rbd);
        await rm(join(workDir, RECORD), { force: true });
        throw error;
      }
      committed = true;
      const done: string[] = [];
      for (const disk of swapped) {
        await removeImage(disk.rbd, named(disk.image, SAFETY));
        done.push(`replaced ${imageSpec(disk.image)}`);
      }
      await rm(join(workDir, RECORD), { force: true });
      return done;
    },
    discard,
  };
}

/** Throws Conflict unless the domain is defined and shut off. */
async function assertShutOff(domain: string, tool: ToolOptions): Promise<void> {
  const state = await domainState(domain, tool);
  if (state === null) throw new Conflict(`domain "${domain}" does not exist on this host`);
  if (state !== 'shut off') {
    throw new Conflict(`domain "${domain}" is ${state}: an in-place restore needs it shut off`);
  }
}

/** Every disk of the record back on its old image; answers a line per image put back. */
async function putBack(record: InPlaceRecord, rbd: Rbd): Promise<string[]> {
  const done: string[] = [];
  for (const disk of record.disks) {
    const client = rbd.as(disk.clientId);
    const safety = named(disk.image, SAFETY);
    if (await client.exists(safety)) {
      // The new image may already be in place: moved aside, then removed below.
      if (await client.exists(disk.image)) await rename(client, disk.image, named(disk.image, INCOMING));
      await rename(client, safety, disk.image);
      done.push(`put back ${imageSpec(disk.image)}`);
    }
    await removeImage(client, named(disk.image, INCOMING));
  }
  return done;
}

/** Undoes an in-place restore a crash cut short (see the file comment); lines of what it did. */
export async function undoRbdInPlace(workDir: string, rbd: Rbd): Promise<string[]> {
  const record = await readRecord(workDir);
  if (!record) return [];
  const done = record.swapping
    ? await putBack(record, rbd)
    : await (async () => {
        for (const disk of record.disks)
          await removeImage(rbd.as(disk.clientId), named(disk.image, INCOMING));
        return [] as string[];
      })();
  await rm(join(workDir, RECORD), { force: true });
  return done;
}
