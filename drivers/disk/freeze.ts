/**
 * FS_FREEZE around a disk snapshot: SUSPEND pauses the VM, AGENT freezes the guest's file systems
 * through the QEMU guest agent, NONE does nothing.
 */
import { retry as retrying } from '#platform/retry.ts';
import { ExecError } from '../exec.ts';
import type { FreezeMode } from './driver.ts';
import { FsFreezeFailed } from './errors.ts';
import { sharedFreeze } from './shared-freeze.ts';
import { type ToolOptions, virsh } from './tools.ts';

/**
 * Quiesces a running guest for a driver's snapshot step. Inside a backup of several disk drivers
 * (`shared-freeze.ts`) it waits for the others and the guest is frozen once for all of them;
 * otherwise see {@link freezeAlone}.
 */
export async function freeze(
  domain: string,
  mode: FreezeMode,
  state: string,
  tool: ToolOptions,
): Promise<() => Promise<void>> {
  const shared = sharedFreeze();
  if (shared) return shared.gate.enter(shared.id, domain, mode, state, tool);
  return freezeAlone(domain, mode, state, tool);
}

/**
 * Quiesces a running guest (a paused one is left as it is: its agent could not answer); returns
 * the undo, which is not cancellable (a guest must never stay paused or frozen because a backup
 * was aborted) and throws only when it still fails after retries.
 */
export async function freezeAlone(
  domain: string,
  mode: FreezeMode,
  state: string,
  tool: ToolOptions,
): Promise<() => Promise<void>> {
  if (state !== 'running') return async () => {};
  const undo = (verb: string, what: string) => () =>
    retry(
      () => virsh([verb, domain], { uri: tool.uri }),
      `VM '${domain}' could not be ${what} (FS_FREEZE=${mode})`,
    );
  if (mode === 'SUSPEND') {
    await virsh(['suspend', domain], tool);
    return undo('resume', 'resumed');
  }
  if (mode === 'AGENT') {
    try {
      await virsh(['domfsfreeze', domain], tool);
    } catch (error) {
      const detail = error instanceof ExecError ? error.stderrTail : String(error);
      const message = /agent is not connected|agent.*not configured|guest agent/i.test(detail)
        ? `VM '${domain}' has no QEMU guest agent connected (FS_FREEZE=AGENT)`
        : `VM '${domain}' file systems could not be frozen (FS_FREEZE=AGENT): ${detail}`;
      throw new FsFreezeFailed(message, { cause: error });
    }
    return undo('domfsthaw', 'thawed');
  }
  return async () => {};
}

/** Tries `fn` three times, a second apart; then fails with {@link FsFreezeFailed}. */
async function retry(fn: () => Promise<unknown>, message: string): Promise<void> {
  await retrying(fn, {
    attempts: 3,
    retryOn: () => true,
    delayMs: () => 1000,
    exhausted: (error) => new FsFreezeFailed(message, { cause: error }),
  });
}
