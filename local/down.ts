/**
 * `lifeboat local down`: stop the supervisor and every process it started, by the pids in
 * `<home>/pids.json`: SIGTERM, then SIGKILL after 10 s. Nothing running is not an error.
 */
import { homePaths, resolveHome } from './config.ts';
import { isAlive, readPids, removePids } from './pids.ts';

const GRACE_MS = 10_000;

/** Stop local mode of `home`; resolves `{ stopped: false }` when it was not running. */
export async function localDown(opts: { home?: string } = {}): Promise<{ stopped: boolean }> {
  const paths = homePaths(resolveHome(opts.home));
  const pids = await readPids(paths.pids);
  if (!pids) return { stopped: false };
  const all = [pids.supervisor, ...Object.values(pids.children)].filter((pid) => isAlive(pid));
  if (!all.length) {
    await removePids(paths.pids);
    return { stopped: false };
  }
  // The supervisor stops its children itself; they are signalled only if it cannot.
  signal(pids.supervisor, 'SIGTERM');
  const deadline = Date.now() + GRACE_MS;
  while (Date.now() < deadline && all.some(isAlive)) await new Promise((r) => setTimeout(r, 100));
  for (const pid of all.filter(isAlive)) signal(pid, 'SIGKILL');
  while (all.some(isAlive) && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 50));
  await removePids(paths.pids);
  return { stopped: true };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
