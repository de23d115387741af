/** `<home>/pids.json`: which processes local mode runs, so `down` can stop them by pid. */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

/** The content of pids.json. */
export interface PidsFile {
  supervisor: number;
  children: Record<string, number>;
  home: string;
  endpoint: string;
  startedAt: string;
}

/** Read pids.json; undefined when absent or unreadable. */
export async function readPids(file: string): Promise<PidsFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as PidsFile;
    return typeof parsed.supervisor === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Write pids.json (0600) atomically: `up` may read it at any moment. */
export async function writePids(file: string, pids: PidsFile): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, `${JSON.stringify(pids, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Remove pids.json; absent is fine. With `ownPid`, only when it names that supervisor: a
 * supervisor that failed to start must not erase the record of the one already running.
 */
export async function removePids(file: string, ownPid?: number): Promise<void> {
  if (ownPid !== undefined && (await readPids(file))?.supervisor !== ownPid) return;
  await rm(file, { force: true });
}

/** Whether a process with this pid exists (and may be signalled by us). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
