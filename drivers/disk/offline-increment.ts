/**
 * Increment of a powered-off VM's qcow2 disks without starting the VM: a short-lived
 * `qemu-storage-daemon` opens each disk (holding QEMU's write lock, so the domain cannot start
 * meanwhile), and one QMP transaction adds the new persistent bitmap and starts a
 * `blockdev-backup` (sync=bitmap on the parent's bitmap, bitmap-mode=never so the parent's bitmap
 * is left as libvirt expects) into a fresh qcow2 with no backing file. Only the dirty clusters are
 * read and written: the same mechanism libvirt uses for a running VM's push-mode backup.
 */

import { stat } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { ExecError, run } from '../exec.ts';
import { ChainBroken, DiskSnapshotFailed } from './errors.ts';

export interface OfflineIncrementDisk {
  target: string;
  source: string;
  /** The qcow2 file to create with the changed clusters. */
  output: string;
  virtualSize: number;
}

/** Runs the increment of every disk; throws {@link ChainBroken} when a parent bitmap is unusable. */
export async function offlineIncrement(
  disks: readonly OfflineIncrementDisk[],
  parent: string,
  checkpoint: string,
  workDir: string,
  signal?: AbortSignal,
): Promise<void> {
  for (const disk of disks) {
    await run(
      { file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', disk.output, String(disk.virtualSize)] },
      { signal },
    );
  }
  const socket = join(workDir, 'qsd.sock');
  const abort = new AbortController();
  const stop = () => abort.abort();
  signal?.addEventListener('abort', stop, { once: true });
  const args = disks.flatMap((d) => [
    '--blockdev',
    `driver=file,node-name=f-${d.target},filename=${escapeOpt(d.source)}`,
    '--blockdev',
    `driver=qcow2,node-name=s-${d.target},file=f-${d.target}`,
    '--blockdev',
    `driver=file,node-name=o-${d.target},filename=${escapeOpt(d.output)}`,
    '--blockdev',
    `driver=qcow2,node-name=t-${d.target},file=o-${d.target}`,
  ]);
  let failure: unknown;
  const daemon = run(
    {
      file: 'qemu-storage-daemon',
      args: [
        ...args,
        '--chardev',
        `socket,id=m,path=${escapeOpt(socket)},server=on,wait=off`,
        '--monitor',
        'chardev=m',
        '--pidfile',
        join(workDir, 'qsd.pid'),
      ],
    },
    { signal: abort.signal },
  ).catch((error: unknown) => {
    failure = error;
  });
  try {
    for (let i = 0; i < 100 && failure === undefined && !(await exists(socket)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (failure !== undefined || !(await exists(socket))) {
      const detail = failure instanceof ExecError ? failure.stderrTail : 'qemu-storage-daemon did not start';
      throw new DiskSnapshotFailed(`Cannot open the disks of a stopped VM (is it running?): ${detail}`, {
        cause: failure,
      });
    }
    const qmp = await Qmp.connect(socket);
    try {
      await qmp.execute('qmp_capabilities');
      const actions = disks.flatMap((d) => [
        {
          type: 'block-dirty-bitmap-add',
          data: { node: `s-${d.target}`, name: checkpoint, persistent: true },
        },
        {
          type: 'blockdev-backup',
          data: {
            'job-id': `lb-${d.target}`,
            device: `s-${d.target}`,
            target: `t-${d.target}`,
            sync: 'bitmap',
            bitmap: parent,
            'bitmap-mode': 'never',
          },
        },
      ]);
      const done = disks.map((d) =>
        qmp.waitEvent('BLOCK_JOB_COMPLETED', (e) => e.device === `lb-${d.target}`),
      );
      try {
        await qmp.execute('transaction', { actions });
      } catch (error) {
        const message = (error as Error).message;
        if (/bitmap/i.test(message)) {
          throw new ChainBroken(`Checkpoint '${parent}' cannot be followed offline: ${message}`);
        }
        throw new DiskSnapshotFailed(`Offline increment failed: ${message}`);
      }
      for (const event of await Promise.all(done)) {
        if (event.error)
          throw new DiskSnapshotFailed(`Offline increment of ${event.device} failed: ${event.error}`);
      }
      await qmp.execute('quit').catch(() => {});
    } finally {
      qmp.close();
    }
    await daemon;
    if (failure !== undefined && !abort.signal.aborted) throw failure;
  } finally {
    signal?.removeEventListener('abort', stop);
    abort.abort();
    await daemon;
  }
}

/** QEMU option values escape a comma by doubling it. */
function escapeOpt(value: string): string {
  return value.replaceAll(',', ',,');
}

type QmpEvent = Record<string, unknown> & { device?: string; error?: string };

/** A minimal QMP client: one command at a time, events kept for waiters. */
class Qmp {
  private buffer = '';
  private pending?: { resolve(v: unknown): void; reject(e: Error): void };
  private readonly waiters: { name: string; match(e: QmpEvent): boolean; resolve(e: QmpEvent): void }[] = [];
  private readonly events: { name: string; data: QmpEvent }[] = [];
  private greeted!: Promise<void>;

  private constructor(private readonly socket: Socket) {}

  static async connect(path: string): Promise<Qmp> {
    const socket = createConnection(path);
    const qmp = new Qmp(socket);
    qmp.greeted = new Promise((resolve, reject) => {
      qmp.pending = { resolve: () => resolve(), reject };
      socket.once('error', reject);
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => qmp.onData(chunk));
    await qmp.greeted;
    return qmp;
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
    });
  }

  waitEvent(name: string, match: (e: QmpEvent) => boolean): Promise<QmpEvent> {
    const seen = this.events.find((e) => e.name === name && match(e.data));
    if (seen) return Promise.resolve(seen.data);
    return new Promise((resolve) => this.waiters.push({ name, match, resolve }));
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
    }
  }

  private onMessage(message: Record<string, unknown>): void {
    if (typeof message.event === 'string') {
      const data = (message.data ?? {}) as QmpEvent;
      const index = this.waiters.findIndex((w) => w.name === message.event && w.match(data));
      if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(data);
      else this.events.push({ name: message.event, data });
      return;
    }
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    if ('error' in message) {
      const error = message.error as { desc?: string };
      pending.reject(new Error(error.desc ?? JSON.stringify(error)));
    } else pending.resolve(message.return ?? message.QMP);
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
