/** `<home>/pids.json`: which processes local mode runs, so `down` can stop them by pid. */
import { readFile, rm, writeFile } from 'node:fs/promises';

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

/** Write pids.json (0600). */
export async function writePids(file: string, pids: PidsFile): Promise<void> {
  await writeFile(file, `${JSON.stringify(pids, null, 2)}\n`, { mode: 0o600 });
}

/** Remove pids.json; absent is fine. */
export async function removePids(file: string): Promise<void> {
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
