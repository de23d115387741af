/**
 * One Lifeboat backup timed from the API call to the image READY, as a user sees it: POST
 * /vms/{id}/backup, then GET /executions/{id} (and the image once known) every 100 ms. Every
 * change of state, phase and progress is time-stamped, so a slow run shows where time went.
 * The runner's `verifying` phase (the stored disks read back and hashed) is timed apart: from
 * the first poll that sees it to the first that sees a later phase.
 */
import { secondsSince } from './measure.ts';
import type { Api } from './stack.ts';

/** One observed change, `t` seconds after the API call. */
export interface Mark {
  t: number;
  what: string;
}

/** The outcome of a timed backup. */
export interface LifeboatRun {
  /** API call to the image READY. */
  seconds: number;
  /** API call to the execution SUCCEEDED (Release done). */
  executionSeconds: number;
  /**
   * The verification after the backup (phase `verifying`), as the polls saw it: 0 when it fell
   * between two polls. `seconds - verifySeconds` is the backup up to the data stored.
   */
  verifySeconds: number;
  imageId: number;
  executionId: string;
  timeline: Mark[];
}

/** Requests a backup of `vmId` to `datastoreId` and waits for it; throws if it does not succeed. */
export async function timeLifeboatBackup(
  api: Api,
  vmId: number,
  datastoreId: number,
  pollMs = 100,
  timeoutMs = 30 * 60_000,
  /** `reset`: start a new increment chain (a FULL) even if one exists. */
  options: { reset?: boolean } = {},
): Promise<LifeboatRun> {
  const start = performance.now();
  const timeline: Mark[] = [];
  const mark = (what: string) => timeline.push({ t: secondsSince(start), what });
  const requested = await api('POST', `/vms/${vmId}/backup`, {
    datastoreId,
    ...(options.reset && { reset: true }),
  });
  const executionId = String(requested.id);
  mark(`POST answered: execution ${executionId} ${requested.state}`);
  let seen = '';
  let imageId: number | undefined;
  let readyAt: number | undefined;
  let uploadStarted = false;
  let imageError = false;
  // The image is asked for only once the upload is over (half the requests meanwhile).
  let phase = 'queued';
  let verifyFrom: number | undefined;
  let verifyTo: number | undefined;
  for (;;) {
    // The image first: it turns READY at Commit, before the execution's Release.
    if (
      imageId !== undefined &&
      readyAt === undefined &&
      !imageError &&
      !['running', 'preparing', 'uploading', 'verifying', 'completing'].includes(phase)
    ) {
      const image = await api('GET', `/images/${imageId}`);
      if (image.state === 'READY') {
        readyAt = secondsSince(start);
        mark(`image ${imageId} READY`);
      } else if (image.state === 'ERROR') {
        imageError = true;
        mark(`image ${imageId} ERROR`);
      }
    }
    const execution = await api('GET', `/executions/${executionId}`);
    phase = String(execution.phase);
    if (phase === 'verifying') verifyFrom ??= secondsSince(start);
    else if (verifyFrom !== undefined) verifyTo ??= secondsSince(start);
    const state = `${execution.state}/${phase}`;
    if (state !== seen) {
      mark(`execution ${state}`);
      seen = state;
    }
    if (!uploadStarted && Number(execution.bytesDone) > 0) {
      uploadStarted = true;
      mark('first bytes uploaded');
    }
    if (typeof execution.imageId === 'number') imageId = execution.imageId;
    if (!['QUEUED', 'RUNNING'].includes(String(execution.state))) {
      if (execution.state === 'SUCCEEDED' && readyAt === undefined && imageId !== undefined) {
        // Commit and Release both fell between two polls.
        if ((await api('GET', `/images/${imageId}`)).state === 'READY') readyAt = secondsSince(start);
      }
      if (execution.state !== 'SUCCEEDED' || readyAt === undefined || imageId === undefined) {
        throw new Error(
          `backup execution ${executionId} ended ${execution.state}: ${JSON.stringify(execution.error ?? {})}`,
        );
      }
      const verifySeconds = verifyFrom === undefined ? 0 : (verifyTo ?? secondsSince(start)) - verifyFrom;
      return {
        seconds: readyAt,
        executionSeconds: secondsSince(start),
        verifySeconds,
        imageId,
        executionId,
        timeline,
      };
    }
    if (performance.now() - start > timeoutMs)
      throw new Error(`backup execution ${executionId} still ${state}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
