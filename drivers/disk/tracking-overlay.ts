/**
 * Tracking overlays of INCREMENT_MODE=SNAPSHOT (see `snapshot-mode.ts`): their names, the chain a
 * disk runs on (live, or from the files' headers when the VM is off), whether a file is still in
 * use, and committing a top overlay back down (live block commit and pivot, or qemu-img and a
 * redefinition of the stopped domain).
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { run } from '../exec.ts';
import { parseDomainXml } from './domain-xml.ts';
import { DiskSnapshotFailed } from './errors.ts';
import { domainState, domainXml, isActiveState, isPersistent, type ToolOptions, virsh } from './tools.ts';
import { pointDiskAt } from './work-dir.ts';

/** The tracking overlay of `base` for checkpoint `checkpoint` (names are `lifeboat-...`). */
export const trackingPath = (base: string, checkpoint: string) => `${base}.${checkpoint}.qcow2`;

const TRACKING = /^(.+)\.(lifeboat-[A-Za-z0-9_-]+)\.qcow2$/;

/** The base file and checkpoint of a path named like a tracking overlay, else undefined. */
export function trackedBaseOf(path: string): { base: string; checkpoint: string } | undefined {
  const match = TRACKING.exec(path);
  return match ? { base: match[1] as string, checkpoint: match[2] as string } : undefined;
}

/** File sources of disk `target` in a libvirt XML, top first, then its `<backingStore>` chain. */
export function diskSources(xml: string, target: string): string[] {
  const disks = xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? [];
  const disk = disks.find((d) => new RegExp(`<target\\s+dev=['"]${target}['"]`).test(d));
  if (!disk) return [];
  return [...disk.matchAll(/<source\s+file=(['"])([^'"]*)\1/g)].map((m) =>
    (m[2] as string)
      .replace(/&apos;/g, "'")
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&amp;/g, '&'),
  );
}

const ChainEntry = z.object({ filename: z.string(), format: z.string() });

/** `qemu-img info --backing-chain` of a file, top first (`shared`: metadata of a running VM's file). */
export async function imageChain(
  path: string,
  options: { shared: boolean; signal?: AbortSignal },
): Promise<{ path: string; format: string }[]> {
  const args = ['info', '--output=json', '--backing-chain', ...(options.shared ? ['-U'] : []), path];
  const { stdout } = await run({ file: 'qemu-img', args }, { signal: options.signal });
  return z
    .array(ChainEntry)
    .parse(JSON.parse(stdout))
    .map((e) => ({ path: e.filename, format: e.format }));
}

/** The domain's state and live XML as just read, so a caller that has them spares virsh calls. */
export interface KnownDomain {
  state: string | null;
  xml: string;
}

/** What disk `target` of the domain runs on now: the live chain, or the persistent one when it is off. */
export async function currentChain(
  domain: string,
  target: string,
  tool: ToolOptions,
  known?: KnownDomain,
): Promise<{ active: boolean; chain: string[] }> {
  const active = isActiveState(known ? known.state : await domainState(domain, tool));
  const top = diskSources(known ? known.xml : await domainXml(domain, tool), target);
  if (active || !top[0]) return { active, chain: top };
  // A stopped domain's XML may carry no (or a stale) backing chain: the files' headers rule.
  const chain = await imageChain(top[0], { shared: false, signal: tool.signal }).catch(() => undefined);
  return { active, chain: chain ? chain.map((e) => e.path) : top };
}

/** True when `path` is in the domain's live or persistent chain of any disk. */
export async function inUse(domain: string, path: string, tool: ToolOptions): Promise<boolean> {
  if ((await domainState(domain, tool)) === null) return true; // unknown: keep it
  const xml = parseDomainXml(await domainXml(domain, tool));
  for (const disk of xml.disks) {
    if ((await currentChain(domain, disk.target, tool)).chain.includes(path)) return true;
  }
  const inactive = (await isPersistent(domain, tool))
    ? await domainXml(domain, { ...tool, inactive: true })
    : '';
  return xml.disks.some((d) => diskSources(inactive, d.target).includes(path));
}

/** Redefines the persistent domain with each `target` pointing at a file (backing chain probed again). */
export async function pointPersistentAt(
  domain: string,
  points: readonly { target: string; path: string; format: string }[],
  tool: ToolOptions,
): Promise<void> {
  if (points.length === 0 || !(await isPersistent(domain, tool))) return;
  let xml = await domainXml(domain, { ...tool, inactive: true, securityInfo: true });
  for (const p of points) xml = pointDiskAt(xml, p.target, p.path, p.format);
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-define-'));
  try {
    // Holds security info (passwords): a private folder, removed right after.
    const file = join(dir, 'domain.xml');
    await writeFile(file, xml, { mode: 0o600 });
    await virsh(['define', file], tool);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Aborts a block job left on disk `target` by a runner killed during a commit. Safe at any
 * point: an aborted commit leaves the chain as it was (data partly copied down reads the same),
 * and the caller then commits again from the start.
 */
export async function abortLeftJob(domain: string, target: string, tool: ToolOptions): Promise<string[]> {
  const job = async () => /type=/.test(await virsh(['blockjob', domain, target, '--info', '--raw'], tool));
  if (!(await job())) return [];
  await virsh(['blockjob', domain, target, '--abort'], tool).catch(() => {});
  for (let i = 0; i < 100 && (await job()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  return [`aborted the block job left on ${domain} ${target}`];
}

/**
 * Commits the top of disk `target` into the file under it and puts the domain back on that file
 * (live: active block commit and pivot; stopped: qemu-img commit and redefine), then deletes the
 * old top when nothing uses it any more.
 */
export async function commitTopDown(
  domain: string,
  target: string,
  top: string,
  tool: ToolOptions,
): Promise<string[]> {
  const { active, chain } = await currentChain(domain, target, tool);
  if (chain[0] !== top || !chain[1]) return [];
  const done: string[] = [];
  if (active) {
    done.push(...(await abortLeftJob(domain, target, tool)));
    await virsh(['blockcommit', domain, target, '--active', '--shallow', '--pivot', '--wait'], tool);
  } else {
    const [, under] = await imageChain(top, { shared: false, signal: tool.signal });
    if (!under) throw new DiskSnapshotFailed(`${top} has no backing file to commit into`);
    await run({ file: 'qemu-img', args: ['commit', '-f', 'qcow2', top] }, tool);
    await pointPersistentAt(domain, [{ target, path: under.path, format: under.format }], tool);
  }
  done.push(`committed ${top} into ${chain[1]}`);
  if (!(await inUse(domain, top, tool))) {
    await rm(top, { force: true });
    done.push(`removed ${top}`);
  }
  return done;
}

/** True when a file exists. */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
