/**
 * restic's `catalog`: every complete Lifeboat backup of a datastore, read from the repositories
 * themselves (see restic-driver.ts's header for the layout): each repository under BASE_PATH
 * (`<vmid>`, `job-<id>`), its snapshots tagged `lifeboat` grouped by their `backup:<uuid>` tag,
 * a group complete when it holds `vm.xml` (restic-repo.ts's helpers, as every operation reads
 * them); the sizes from one `find`, the template by `dump`.
 */
import { readdir } from 'node:fs/promises';
import { mapConcurrent } from '#core/concurrency.ts';
import type { CatalogBackup, DatastoreTarget, OperationContext } from './driver.ts';
import { BackupNotFound } from './errors.ts';
import { basePath, isRepositoryFolder, TEMPLATE_NAME } from './layout.ts';
import { backupGroups, isComplete, ResticRepo, type Snapshot, tagValue } from './restic-repo.ts';
import { listRemoteFolder, parseServer } from './ssh.ts';

/** A template bigger than this is not one Lifeboat stored: left out of the catalog. */
const MAX_TEMPLATE_BYTES = 1024 * 1024;

/**
 * Repositories (and, in each, templates) read at once: each restic process waits 200 ms on its
 * lock before it reads, and over sftp opens its own ssh session, so a datastore of a hundred VMs
 * read one process at a time takes minutes of waiting. Four repositories at once, each reading
 * two templates at once (eight restic processes at most), keeps a small server's load low.
 */
const CONCURRENT_REPOSITORIES = 4;
const CONCURRENT_TEMPLATES = 2;

export async function resticCatalog(
  target: DatastoreTarget,
  ctx: OperationContext = {},
): Promise<CatalogBackup[]> {
  const repositories = (await repositoryFolders(target, ctx)).sort().flatMap((folder) => {
    const [, job, digits = ''] = /^(job-)?(\d+)$/.exec(folder) ?? [];
    const id = Number(digits);
    // Only a name a driver makes (`7`): `007`, or a number past 2^53, is the path of no id.
    return String(id) === digits ? [{ id, job: Boolean(job) }] : [];
  });
  const catalogs = await mapConcurrent(repositories, CONCURRENT_REPOSITORIES, async ({ id, job }) => {
    const repoTarget: DatastoreTarget = { ...target, jobId: job ? id : undefined };
    try {
      return await ResticRepo.use(repoTarget, job ? 0 : id, (repo) =>
        repositoryCatalog(repo, job ? null : id, job ? id : null, ctx),
      );
    } catch (error) {
      // A folder that is no repository (or not yet one): nothing of ours in it.
      if (error instanceof BackupNotFound && error.repositoryMissing) return [];
      throw error;
    }
  });
  return catalogs.flat();
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

/**
 * The complete backups of one repository. `folderVmId`: the VM whose own repository it is (its
 * folder `<vmid>`), null for a job's, shared by its VMs and told apart by their `vm:<id>` tags.
 * The folder, not a tag, names the VM of its own repository's backups: a restore by VM id opens
 * `<BASE_PATH>/<vmid>`, so that is where the image must say its data is.
 */
async function repositoryCatalog(
  repo: ResticRepo,
  folderVmId: number | null,
  jobId: number | null,
  ctx: OperationContext,
): Promise<CatalogBackup[]> {
  const groups = backupGroups(await repo.snapshots(['lifeboat'], ctx.signal));
  if (groups.size === 0) return [];
  const sizes = new Map((await repo.files('lifeboat', ctx.signal)).map((f) => [f.snapshot, f.size] as const));
  // Incomplete: an interrupted backup (reconcile removes it).
  const complete = [...groups].filter(([, group]) => isComplete(group));
  return mapConcurrent(complete, CONCURRENT_TEMPLATES, async ([backupId, group]) => {
    const template = group.byName.get(TEMPLATE_NAME) as Snapshot;
    const vmId = folderVmId ?? Number(tagValue(template, 'vm'));
    const image = tagValue(template, 'image');
    const xml = await repo
      .run(['dump', template.id, `/${TEMPLATE_NAME}`], { signal: ctx.signal })
      .then((r) => (Buffer.byteLength(r.stdout) > MAX_TEMPLATE_BYTES ? null : r.stdout))
      .catch((error: unknown) => {
        if (ctx.signal?.aborted) throw error;
        return null;
      });
    return {
      vmId,
      backupId,
      imageId: image === undefined ? null : Number(image),
      jobId,
      time: template.time,
      files: [...group.byName]
        .filter(([name]) => name !== TEMPLATE_NAME)
        .map(([name, s]) => ({ name, size: sizes.get(s.id) ?? 0, sha256: null })),
      template: xml,
    };
  });
}
