/**
 * The datastore's upload started while the disk driver makes the disks stable: restic needs
 * over a second (ssh, repository open, key derivation) before it reads a byte, and a snapshot
 * takes a fraction of one, so they overlap. The upload is given the files with a `ready` gate
 * (see `DiskSource`): nothing is read before `prepareBackup` has resolved, so the freeze and the
 * consistency of what is read are exactly those of a backup started afterwards.
 */
import type { BackupOutput, DiskSource } from '#drivers/datastore/driver.ts';
import type { PreparedBackup, PreparedFile } from '#drivers/disk/driver.ts';

/** Starts the datastore's backup of `files` (sources gated) and `template`. */
export type StartUpload = (
  files: { name: string; source: DiskSource }[],
  template: string,
) => Promise<BackupOutput>;

/** Why an early upload was dropped when the prepare failed or handed out other files. */
export class EarlyUploadDropped extends Error {
  override readonly name = 'EarlyUploadDropped';
}

/** One backup's early upload: {@link onFiles} for the disk driver, then {@link take} or {@link cancel}. */
export class EarlyUpload {
  private open!: () => void;
  private refuse!: (reason: unknown) => void;
  private readonly gate = new Promise<void>((resolve, reject) => {
    this.open = resolve;
    this.refuse = reject;
  });
  private started?: { files: readonly PreparedFile[]; template: string; output: Promise<BackupOutput> };

  constructor(private readonly start: StartUpload) {
    this.gate.catch(() => {}); // a refused gate is reported by the upload it stops
  }

  /** PrepareOptions.onFiles: starts the upload when every file is a plain file (NBD exports start later). */
  readonly onFiles = (files: readonly PreparedFile[], template: string): void => {
    if (this.started || files.length === 0 || files.some((f) => f.source.kind !== 'file')) return;
    const output = this.start(
      files.map((f) => ({ name: f.name, source: { ...f.source, ready: this.gate } as DiskSource })),
      template,
    );
    output.catch(() => {}); // awaited by take or cancel
    this.started = { files, template, output };
  };

  /**
   * The early upload, now let read, when it is the one `prepared` asks for (same names, sources
   * and template); otherwise it is cancelled and undefined says to start one now.
   */
  async take(prepared: PreparedBackup): Promise<Promise<BackupOutput> | undefined> {
    const started = this.started;
    if (!started) return undefined;
    const same =
      started.template === prepared.template &&
      started.files.length === prepared.files.length &&
      started.files.every((f, i) => {
        const p = prepared.files[i];
        return (
          p !== undefined &&
          p.name === f.name &&
          p.source.kind === 'file' &&
          f.source.kind === 'file' &&
          p.source.path === f.source.path
        );
      });
    if (!same) {
      await this.cancel(new EarlyUploadDropped('the prepared backup hands out other files'));
      return undefined;
    }
    this.open();
    return started.output;
  }

  /** Stops an early upload before it read anything (the prepare failed); waits for its cleanup. */
  async cancel(reason: unknown): Promise<void> {
    this.refuse(reason);
    await this.started?.output.catch(() => {});
    this.started = undefined;
  }
}
