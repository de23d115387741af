/**
 * The rbd driver's record in a backup's work folder (`lifeboat-rbd.json`): the snapshots a backup
 * is about to create, written BEFORE the first one is, so that a reconcile after a crash at any
 * point removes exactly those (and never a snapshot it did not create), plus the increment files
 * it writes there for a datastore that reads files only.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

const RECORD = 'lifeboat-rbd.json';
/** Our file names in a work folder: nothing else there is ever removed. */
export const OWN_FILE = /^(lifeboat-rbd\.json|disk\.\d+\.inc\d+\.rbdiff)$/;

const Image = z.object({ pool: z.string(), namespace: z.string().optional(), image: z.string() });

export const RbdRecord = z.object({
  v: z.literal(1),
  domain: z.string().min(1),
  /** Snapshots this backup creates, one per disk. */
  snapshots: z.array(z.object({ image: Image, clientId: z.string().optional(), name: z.string() })),
});
export type RbdRecord = z.infer<typeof RbdRecord>;

export async function writeRbdRecord(workDir: string, record: RbdRecord): Promise<void> {
  await writeFile(join(workDir, RECORD), JSON.stringify(record), { mode: 0o600 });
}

/** The record of a work folder, or undefined when there is none (or it does not parse). */
export async function readRbdRecord(workDir: string): Promise<RbdRecord | undefined> {
  try {
    return RbdRecord.parse(JSON.parse(await readFile(join(workDir, RECORD), 'utf8')));
  } catch {
    return undefined;
  }
}

export async function removeRbdRecord(workDir: string): Promise<void> {
  await rm(join(workDir, RECORD), { force: true });
}
