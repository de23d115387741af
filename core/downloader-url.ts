/**
 * Download URLs: how a user names one file of a stored backup, whatever drives the datastore.
 *
 * - `restic://<dsid>/<backupId>/<file>`: restic keeps one repository per VM, and the backupId
 *   (a uuid tagging the backup's snapshots) is unique, so the VM is found from the image.
 * - `rsync://<dsid>/<vmid>/<hash>/<file>`: the rsync datastore's own layout, hash = the image's
 *   `source`.
 *
 * The file is a plain name (`disk.0.raw`, `vm.xml`): never a path. Pure: no I/O.
 */
import { ValidationError } from './errors.ts';
import type { DatastoreDriverName } from './model.ts';

/** A parsed download URL. */
export type DownloadUrl =
  | { scheme: 'restic'; datastoreId: number; backupId: string; file: string }
  | { scheme: 'rsync'; datastoreId: number; vmId: number; backupId: string; file: string };

/** Name of the VM template stored beside the disks of every backup. */
export const TEMPLATE_FILE = 'vm.xml';

const SCHEMES = ['restic', 'rsync'] as const;
const ID = /^(0|[1-9][0-9]{0,9})$/;
// Backup ids and file names: one path segment of safe characters, never `.` or `..`.
const NAME = /^[A-Za-z0-9._-]+$/;

function fail(url: string, why: string): never {
  const shown = url.length > 120 ? `${url.slice(0, 120)}...` : url;
  throw new ValidationError(`url: ${why} (got "${shown}")`);
}

function id(url: string, part: string, what: string): number {
  if (!ID.test(part)) fail(url, `${what} must be a non-negative integer, not "${part.slice(0, 40)}"`);
  return Number(part);
}

function name(url: string, part: string, what: string): string {
  if (part === '.' || part === '..') fail(url, `${what} must not be "${part}"`);
  if (!NAME.test(part)) fail(url, `${what} may hold only letters, digits, ".", "_" and "-"`);
  return part;
}

/**
 * Parse and validate a download URL. Throws ValidationError naming what is wrong: an unknown
 * scheme, a missing or empty part, a bad id, `..`, or a slash (extra part) in the file name.
 */
export function parseDownloadUrl(url: string): DownloadUrl {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(url);
  if (!match) fail(url, 'must look like restic://DS/BACKUP/FILE or rsync://DS/VMID/HASH/FILE');
  const scheme = (match[1] as string).toLowerCase();
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    fail(url, `unknown scheme "${scheme.slice(0, 20)}": use restic:// or rsync://`);
  }
  const rest = match[2] as string;
  if (/[?#]/.test(rest)) fail(url, 'must not have a query or a fragment');
  const parts = rest.split('/');
  const expected = scheme === 'restic' ? 3 : 4;
  const layout = scheme === 'restic' ? 'restic://DS/BACKUP/FILE' : 'rsync://DS/VMID/HASH/FILE';
  if (parts.some((p) => p === '..')) fail(url, 'must not contain ".."');
  if (parts.length > expected) fail(url, `the file must be a plain name without "/": ${layout}`);
  if (parts.length < expected || parts.some((p) => p === '')) fail(url, `empty or missing part: ${layout}`);
  const datastoreId = id(url, parts[0] as string, 'the datastore id');
  if (scheme === 'restic') {
    return {
      scheme,
      datastoreId,
      backupId: name(url, parts[1] as string, 'the backup id'),
      file: name(url, parts[2] as string, 'the file'),
    };
  }
  return {
    scheme: 'rsync',
    datastoreId,
    vmId: id(url, parts[1] as string, 'the VM id'),
    backupId: name(url, parts[2] as string, 'the backup hash'),
    file: name(url, parts[3] as string, 'the file'),
  };
}

/** The download URL of one file of a backup in a datastore of `driver`. */
export function formatDownloadUrl(
  driver: DatastoreDriverName,
  ref: { datastoreId: number; vmId: number; backupId: string; file: string },
): string {
  return driver === 'restic'
    ? `restic://${ref.datastoreId}/${ref.backupId}/${ref.file}`
    : `rsync://${ref.datastoreId}/${ref.vmId}/${ref.backupId}/${ref.file}`;
}

/** The files of an image's backup: one per disk (as stored), then the template. */
export function backupFiles(image: {
  disks: readonly { id: number; file?: string | undefined }[];
}): string[] {
  return [...image.disks.map((d) => d.file ?? `disk.${d.id}`), TEMPLATE_FILE];
}

/** What {@link pointFiles} needs of an image. */
interface StoredImage {
  disks: readonly { id: number; file?: string | undefined }[];
  source: string;
  increments?: readonly {
    id: number;
    type: string;
    source: string;
    disks?: readonly { id: number; file: string }[] | undefined;
  }[];
}

/**
 * Every restore point of an image with the files its backup holds: the FULL (`source`), then
 * each increment stored as its own backup, oldest first. An increment's files are the changed
 * blocks of each disk (`disk.<id>.inc<N>.qcow2` in records that do not list them) plus vm.xml.
 */
export function pointFiles(image: StoredImage): { backupId: string; files: string[] }[] {
  const points = image.source ? [{ backupId: image.source, files: backupFiles(image) }] : [];
  for (const inc of image.increments ?? []) {
    if (!inc.source || points.some((p) => p.backupId === inc.source)) continue;
    const disks = inc.disks?.map((d) => d.file) ?? image.disks.map((d) => `disk.${d.id}.inc${inc.id}.qcow2`);
    points.push({ backupId: inc.source, files: [...disks, TEMPLATE_FILE] });
  }
  return points;
}

/**
 * The download URLs of an image: one per file of each restore point (the FULL's disks and
 * vm.xml, then each increment's); none while it has no stored backup (`source` empty) or is
 * not READY.
 */
export function downloadUrlsOf(
  driver: DatastoreDriverName,
  image: StoredImage & { datastoreId: number; vmId: number; state: string },
): string[] {
  if (image.state !== 'READY' || !image.source) return [];
  return pointFiles(image).flatMap((point) =>
    point.files.map((file) =>
      formatDownloadUrl(driver, {
        datastoreId: image.datastoreId,
        vmId: image.vmId,
        backupId: point.backupId,
        file,
      }),
    ),
  );
}
