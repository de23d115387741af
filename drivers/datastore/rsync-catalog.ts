/**
 * rsync's `catalog`: every complete backup of a datastore, read from the server's folders
 * (`<BASE_PATH>/<vmid>/<hash>/`, see rsync-driver.ts's header): one recursive listing of
 * BASE_PATH for the files and their sizes (RsyncRemote's `tree`), then one receive of the small
 * files of every backup (`.complete`, `vm.xml`, `SHA256SUMS`) into a private temporary folder,
 * with the same safe receive options as every other fetch (no links, devices or owners from the
 * server).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CatalogBackup, DatastoreTarget, OperationContext } from './driver.ts';
import { basePath, TEMPLATE_NAME } from './layout.ts';
import { type ListEntry, MARKER, RsyncRemote, SAFE_RECEIVE_ARGS, SUMS } from './rsync-remote.ts';
import { parseSumLines } from './ssh.ts';

/** Bigger small files are not ones Lifeboat wrote: not received. */
const MAX_SMALL_FILE = '1m';
/** A file directly in a backup folder: `<vmid>/<hash>/<name>`, relative to BASE_PATH. */
const BACKUP_FILE = /^(\d+)\/([A-Za-z0-9-]+)\/([^/]+)$/;

export async function rsyncCatalog(
  target: DatastoreTarget,
  ctx: OperationContext = {},
): Promise<CatalogBackup[]> {
  const remote = new RsyncRemote(target);
  const base = basePath(target);
  // `<vmid>/<hash>` -> file name -> entry, for the files directly in a backup folder.
  const backups = new Map<string, Map<string, ListEntry>>();
  for (const entry of await remote.tree(base, ctx.signal)) {
    const m = BACKUP_FILE.exec(entry.name);
    // Only a VM folder a driver makes (`7`): `007`, or a number past 2^53, is the path of no id.
    if (!m || String(Number(m[1])) !== m[1]) continue;
    const key = `${m[1]}/${m[2]}`;
    const files = backups.get(key) ?? new Map<string, ListEntry>();
    files.set(m[3] as string, entry);
    backups.set(key, files);
  }
  const complete = [...backups].filter(([, files]) => files.get(MARKER)?.isFile);
  if (complete.length === 0) return [];
  const tmp = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-catalog-'));
  try {
    await remote.rsync(
      [
        ...SAFE_RECEIVE_ARGS.filter((a) => a !== '--no-recursive'),
        '-r',
        `--max-size=${MAX_SMALL_FILE}`,
        '--include=/*/',
        '--include=/*/*/',
        ...[MARKER, TEMPLATE_NAME, SUMS].map((name) => `--include=/*/*/${name}`),
        '--exclude=*',
        remote.spec(`${base}/`),
        `${tmp}/`,
      ],
      { signal: ctx.signal },
    );
    const out: CatalogBackup[] = [];
    for (const [key, files] of complete) {
      const [vm, backupId] = key.split('/') as [string, string];
      const small = (name: string) => readFile(join(tmp, vm, backupId, name), 'utf8').catch(() => null);
      const marker = parseJson(await small(MARKER));
      const sums = parseSumLines((await small(SUMS)) ?? '');
      const imageId = marker && typeof marker.imageId === 'number' ? marker.imageId : null;
      out.push({
        vmId: Number(vm),
        backupId,
        imageId,
        jobId: null,
        time: isoOf(files.get(MARKER)?.mtime ?? ''),
        files: [...files]
          .filter(([name, f]) => f.isFile && ![MARKER, SUMS, TEMPLATE_NAME].includes(name))
          .map(([name, f]) => ({ name, size: f.size, sha256: sums.get(name) ?? null })),
        template: await small(TEMPLATE_NAME),
      });
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function parseJson(text: string | null): Record<string, unknown> | null {
  try {
    const value = JSON.parse(text ?? '') as unknown;
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** rsync's `YYYY/MM/DD hh:mm:ss` (the server's local time, read as UTC) as ISO 8601. */
function isoOf(mtime: string): string {
  const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}:\d{2}:\d{2})$/.exec(mtime);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}Z` : new Date(0).toISOString();
}
