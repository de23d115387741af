/**
 * rsync's `catalog`: every complete backup of a datastore, read from the server's folders
 * (`<BASE_PATH>/<vmid>/<hash>/`, see rsync-driver.ts's header): one recursive listing of
 * BASE_PATH for the files and their sizes, then one receive of the small files of every backup
 * (`.complete`, `vm.xml`, `SHA256SUMS`) into a private temporary folder, with the same safe
 * receive options as every other fetch (no links, devices or owners from the server).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CatalogBackup, DatastoreTarget, OperationContext } from './driver.ts';
import { BackupNotFound } from './errors.ts';
import { basePath, TEMPLATE_NAME } from './layout.ts';
import { RsyncRemote, SAFE_RECEIVE_ARGS } from './rsync-remote.ts';

const MARKER = '.complete';
const SUMS = 'SHA256SUMS';
/** Bigger small files are not ones Lifeboat wrote: not received. */
const MAX_SMALL_FILE = '1m';

interface Listed {
  size: number;
  isFile: boolean;
  /** `2026/12/06 12:26:00` as rsync lists it (the server's local time). */
  mtime: string;
}

export async function rsyncCatalog(
  target: DatastoreTarget,
  ctx: OperationContext = {},
): Promise<CatalogBackup[]> {
  const remote = new RsyncRemote(target);
  const base = basePath(target);
  let listing = '';
  try {
    listing = await remote.rsync(['--list-only', '-r', '--no-human-readable', remote.spec(`${base}/`)], {
      signal: ctx.signal,
    });
  } catch (error) {
    if (error instanceof BackupNotFound && error.repositoryMissing) return [];
    throw error;
  }
  // `<vmid>/<hash>` -> file name -> entry, for the files directly in a backup folder.
  const backups = new Map<string, Map<string, Listed>>();
  for (const line of listing.split('\n')) {
    const m = /^([dl-])[rwxsStT-]{9}\s+([\d,]+)\s+(\S+\s+\S+)\s+(\d+)\/([A-Za-z0-9-]+)\/([^/]+)$/.exec(line);
    if (!m) continue;
    const key = `${m[4]}/${m[5]}`;
    const files = backups.get(key) ?? new Map<string, Listed>();
    files.set(m[6] as string, {
      size: Number((m[2] as string).replace(/,/g, '')),
      isFile: m[1] === '-',
      mtime: m[3] as string,
    });
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
      const sums = parseSums((await small(SUMS)) ?? '');
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

/** `sha256sum` lines (`<hex>  <name>`) by name. */
function parseSums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (m) sums.set(m[2] as string, m[1] as string);
  }
  return sums;
}

/** rsync's `YYYY/MM/DD hh:mm:ss` (the server's local time, read as UTC) as ISO 8601. */
function isoOf(mtime: string): string {
  const m = /^(\d{4})\/(\d{2})\/(\d{2}) (\d{2}:\d{2}:\d{2})$/.exec(mtime);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}Z` : new Date(0).toISOString();
}
