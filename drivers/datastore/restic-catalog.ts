/**
 * restic's `catalog`: every complete Lifeboat backup of a datastore, read from the repositories
 * themselves (see restic-driver.ts's header for the layout): each repository under BASE_PATH
 * (`<vmid>`, `job-<id>`), its snapshots tagged `lifeboat` grouped by their `backup:<uuid>` tag,
 * a group complete when it holds `vm.xml`; the sizes from one `find`, the template by `dump`.
 */
import { readdir } from 'node:fs/promises';
import type { CatalogBackup, DatastoreTarget, OperationContext } from './driver.ts';
import { BackupNotFound } from './errors.ts';
import { basePath, isRepositoryFolder, TEMPLATE_NAME } from './layout.ts';
import { ResticRepo, type Snapshot } from './restic-repo.ts';
import { listRemoteFolder, parseServer } from './ssh.ts';

/** A template bigger than this is not one Lifeboat stored: left out of the catalog. */
const MAX_TEMPLATE_BYTES = 1024 * 1024;

export async function resticCatalog(
  target: DatastoreTarget,
  ctx: OperationContext = {},
): Promise<CatalogBackup[]> {
  const out: CatalogBackup[] = [];
  for (const folder of (await repositoryFolders(target, ctx)).sort()) {
    const job = /^job-(\d+)$/.exec(folder);
    const repoTarget: DatastoreTarget = job
      ? { ...target, jobId: Number(job[1]) }
      : { ...target, jobId: undefined };
    const vmId = job ? 0 : Number(folder);
    try {
      out.push(
        ...(await ResticRepo.use(repoTarget, vmId, (repo) =>
          repositoryCatalog(repo, job ? Number(job[1]) : null, ctx),
        )),
      );
    } catch (error) {
      // A folder that is no repository (or not yet one): nothing of ours in it.
      if (error instanceof BackupNotFound && error.repositoryMissing) continue;
      throw error;
    }
  }
  return out;
}

/** Folders directly under BASE_PATH that may be repositories (`<vmid>`, `job-<id>`). */
async function repositoryFolders(target: DatastoreTarget, ctx: OperationContext): Promise<string[]> {
  const base = basePath(target);
  const server = target.attributes.RESTIC_SFTP_SERVER;
  let names: string[];
  if (server) {
    const remote = parseServer(server, target.attributes.RESTIC_SFTP_USER);
    names = await listRemoteFolder(remote, base, `datastore ${target.id}`, ctx);
  } else {
    names = await readdir(base).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
  }
  return names.filter(isRepositoryFolder);
}

function tagValue(snapshot: Snapshot, key: string): string | undefined {
  return snapshot.tags?.find((t) => t.startsWith(`${key}:`))?.slice(key.length + 1);
}

async function repositoryCatalog(
  repo: ResticRepo,
  jobId: number | null,
  ctx: OperationContext,
): Promise<CatalogBackup[]> {
  const snapshots = await repo.snapshots(['lifeboat'], ctx.signal);
  const groups = new Map<string, Snapshot[]>();
  for (const s of snapshots) {
    const id = tagValue(s, 'backup');
    if (id) groups.set(id, [...(groups.get(id) ?? []), s]);
  }
  if (groups.size === 0) return [];
  const { stdout } = await repo.run(['find', '--json', '--tag', 'lifeboat', '*'], { signal: ctx.signal });
  const sizes = new Map<string, number>();
  const results = (JSON.parse(stdout || '[]') ?? []) as {
    snapshot?: string;
    matches?: { path: string; type: string; size?: number }[];
  }[];
  for (const result of results) {
    const match = result.matches?.find((m) => m.type === 'file');
    if (result.snapshot && match) sizes.set(result.snapshot, match.size ?? 0);
  }
  const out: CatalogBackup[] = [];
  for (const [backupId, group] of groups) {
    const nameOf = (s: Snapshot) => (s.paths[0] ?? '').replace(/^\//, '');
    const template = group.find((s) => nameOf(s) === TEMPLATE_NAME);
    // No template: an interrupted backup (reconcile removes it).
    if (!template) continue;
    const vm = Number(tagValue(template, 'vm'));
    const image = tagValue(template, 'image');
    const xml = await repo
      .run(['dump', template.id, `/${TEMPLATE_NAME}`], { signal: ctx.signal })
      .then((r) => (Buffer.byteLength(r.stdout) > MAX_TEMPLATE_BYTES ? null : r.stdout))
      .catch((error: unknown) => {
        if (ctx.signal?.aborted) throw error;
        return null;
      });
    out.push({
      vmId: vm,
      backupId,
      imageId: image === undefined ? null : Number(image),
      jobId,
      time: template.time,
      files: group
        .filter((s) => s !== template)
        .map((s) => ({ name: nameOf(s), size: sizes.get(s.id) ?? 0, sha256: null })),
      template: xml,
    });
  }
  return out;
}
