/**
 * An rbd snapshot seen as a read-only file, for datastores that read files only (rsync): a
 * `qemu-nbd` on the snapshot (QEMU's rbd driver, Debian `qemu-block-extra`), served as the file
 * `<mount>/nbd` by `nbdfuse` (Debian `libnbd-bin`). Every byte the datastore reads comes from Ceph
 * as it is read: no copy of the disk on the host. The mount lives in the backup's work folder
 * (`mnt-<disk id>`) so that reconcile finds and unmounts what a crashed runner left.
 */
import { readdir, readFile, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ExecError, run } from '../exec.ts';
import { DiskSnapshotFailed } from './errors.ts';
import { imageSpec, type Rbd, type RbdImage } from './rbd-cli.ts';

/** Our mount folders in a work folder. */
export const MOUNT_DIR = /^mnt-\d+$/;
const UMOUNT_TIMEOUT_MS = 30_000;

/** A mounted snapshot: `path` is the file; `close()` unmounts it (idempotent). */
export interface SnapshotFile {
  path: string;
  close(): Promise<void>;
}

/** `driver=raw,file.driver=rbd,...` for qemu-nbd (`,` in a value is doubled, as QEMU reads it). */
function imageOpts(rbd: Rbd, image: RbdImage, snapshot: string): string {
  imageSpec(image, snapshot); // every name checked
  const opts: [string, string][] = [
    ['driver', 'raw'],
    ['file.driver', 'rbd'],
    ['file.pool', image.pool],
    ...(image.namespace === undefined ? [] : [['file.namespace', image.namespace] as [string, string]]),
    ['file.image', image.image],
    ['file.snapshot', snapshot],
    ...(rbd.access.conf === undefined ? [] : [['file.conf', rbd.access.conf] as [string, string]]),
    ...(rbd.clientId === undefined ? [] : [['file.user', rbd.clientId] as [string, string]]),
  ];
  return opts.map(([k, v]) => `${k}=${v.replaceAll(',', ',,')}`).join(',');
}

/** Mounts `image@snapshot` read-only as `<mount>/nbd`; `mount` is an empty folder of ours. */
export async function mountSnapshot(
  rbd: Rbd,
  image: RbdImage,
  snapshot: string,
  mount: string,
): Promise<SnapshotFile> {
  const abort = new AbortController();
  let failure: unknown;
  const served = run(
    {
      file: 'nbdfuse',
      args: ['-r', mount, '[', 'qemu-nbd', '-r', '--image-opts', imageOpts(rbd, image, snapshot), ']'],
      ...(rbd.access.conf === undefined ? {} : { env: { CEPH_CONF: rbd.access.conf } }),
    },
    { signal: abort.signal },
  ).catch((error: unknown) => {
    failure = error;
  });
  const path = join(mount, 'nbd');
  const deadline = Date.now() + rbd.timeoutMs;
  while (failure === undefined && Date.now() < deadline && !(await isFile(path))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    await unmount(mount);
    abort.abort();
    await served;
    await rmdir(mount).catch(() => {});
    closed = true;
  };
  if (failure !== undefined || !(await isFile(path))) {
    await close().catch(() => {});
    const detail = failure instanceof ExecError ? failure.stderrTail : 'nbdfuse did not mount it in time';
    throw new DiskSnapshotFailed(`Cannot read ${imageSpec(image, snapshot)} as a file: ${detail}`, {
      cause: failure,
    });
  }
  return { path, close };
}

/** Unmounts every mount folder of ours left in `workDir` (lazily: its server may be dead). */
export async function unmountLeftovers(workDir: string): Promise<string[]> {
  const done: string[] = [];
  for (const name of (await readdir(workDir).catch(() => [] as string[])).filter((n) => MOUNT_DIR.test(n))) {
    const mount = join(workDir, name);
    if (await unmount(mount)) done.push(`unmounted ${mount}`);
    await rmdir(mount).catch(() => {});
  }
  return done;
}

/** Unmounts `mount` when something is mounted there; true when it was. */
async function unmount(mount: string): Promise<boolean> {
  if (!(await isMountPoint(mount))) return false;
  try {
    await run({ file: 'umount', args: [mount] }, { timeoutMs: UMOUNT_TIMEOUT_MS });
  } catch {
    // A server that died leaves the mount unreadable: detach it all the same.
    await run({ file: 'umount', args: ['-l', mount] }, { timeoutMs: UMOUNT_TIMEOUT_MS });
  }
  return true;
}

async function isMountPoint(path: string): Promise<boolean> {
  const target = resolve(path);
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  // Field 5 is the mount point, with spaces and such written as octal escapes.
  return table.split('\n').some((line) => {
    const point = line.split(' ')[4];
    return (
      point !== undefined &&
      point.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8))) === target
    );
  });
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}
