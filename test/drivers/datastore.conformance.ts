/**
 * The ONE conformance suite every datastore driver passes (see the rules in
 * `drivers/datastore/driver.ts`). A driver's test file calls {@link datastoreConformance} with a
 * factory that prepares a server (or a local folder) and says what the driver supports.
 */

// Synchronous /proc reads keep the 10 ms spy from piling up promises.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatastoreDriver, DatastoreTarget, DiskSource } from '#drivers/datastore/driver.ts';

/** What a driver's test file hands the suite. */
export interface ConformanceTarget {
  driver: DatastoreDriver;
  /** A target on this suite's own empty location; `attributes` override the defaults. */
  target(attributes?: Record<string, string>): DatastoreTarget;
  /** Attributes that make a backup slow enough to be cancelled midway (bandwidth limits). */
  slowAttributes: Record<string, string>;
  /** The same datastore with a wrong secret, when the driver has one. */
  wrongSecret?: () => DatastoreTarget;
  /** The secret value that must never appear in process arguments, environments or errors. */
  secret?: string;
  /** A target whose server port is closed, for drivers with a server. */
  unreachable?: () => DatastoreTarget;
  /** Whether the driver streams NBD exports (else it must refuse them with UnsupportedSource). */
  streamsNbd: boolean;
  /** Substrings of the command lines of every process the driver starts for this suite. */
  processMarkers: string[];
  /**
   * Damages what the datastore holds of a backup just stored (before it is verified): flips
   * bytes of the named file, or of the data the driver stored since `since` (ms since epoch).
   */
  damage(stored: { vmId: number; backupId: string; file: string; since: number }): Promise<void>;
  /**
   * Leaves a stored backup as a crash mid-backup would (its files there, not its completion
   * mark: restic's template snapshot, rsync's `.complete`): no failed backup's cleanup runs.
   */
  interrupt(stored: { vmId: number; backupId: string }): Promise<void>;
  stop(): Promise<void>;
}

const MiB = 1024 * 1024;
/** Offsets of the patterns written into the sparse disk: start, unaligned, middle, last block. */
const PATTERN_OFFSETS = [0, MiB + 7, 40 * MiB, 64 * MiB - 4096];
const TEMPLATE =
  '<domain type="kvm"><name>conformance</name><uuid>00000000-0000-0000-0000-000000000001</uuid></domain>\n';

/** What of the suite a driver configuration runs. */
export interface ConformanceScope {
  /**
   * A second way to reach the same driver's store (restic over sftp after restic on a local
   * folder): only the cases whose outcome depends on how the store is reached run (backup and
   * restore, download, stat, monitor, rm, concurrent first backups, the secret, an unreachable
   * server, cancelling); the driver's own logic (verify finding damage, NBD streams, a damaged
   * read-back, a wrong secret) ran with the first configuration and is the same code here.
   */
  transportOnly?: boolean;
}

/** Registers the suite for one driver configuration. */
export function datastoreConformance(
  name: string,
  makeTarget: () => Promise<ConformanceTarget>,
  scope: ConformanceScope = {},
): void {
  /** A case of the driver's own logic: skipped (not registered) for a transport-only scope. */
  const logic = scope.transportOnly ? () => {} : it;
  describe(`datastore conformance: ${name}`, () => {
    let t: ConformanceTarget;
    let work: string;
    let files: { name: string; source: DiskSource }[];
    let sums: Map<string, string>;
    let nextVm = 1;
    /** The backup most tests read, made once in beforeAll while the secret spy watches. */
    let shared: {
      vmId: number;
      backupId: string;
      files: { name: string; size: number; sha256?: string }[];
      verifiedAt?: string;
    };
    const spied = { seen: 0, leaks: [] as string[] };

    beforeAll(async () => {
      t = await makeTarget();
      work = await mkdtemp(join(tmpdir(), 'lifeboat-conformance-'));
      const sparse = join(work, 'disk0.img');
      const handle = await open(sparse, 'w');
      await handle.truncate(64 * MiB);
      for (const [i, offset] of PATTERN_OFFSETS.entries())
        await handle.write(Buffer.alloc(4096, 0xa0 + i), 0, 4096, offset);
      await handle.close();
      const small = join(work, 'disk1.img');
      await writeFile(small, randomBytes(300 * 1024 + 5));
      files = [
        { name: 'disk.0.raw', source: { kind: 'file', path: sparse } },
        { name: 'disk.1.qcow2', source: { kind: 'file', path: small } },
      ];
      sums = new Map([
        ['disk.0.raw', await sha256(sparse)],
        ['disk.1.qcow2', await sha256(small)],
        ['vm.xml', createHash('sha256').update(TEMPLATE).digest('hex')],
      ]);
      const secret = t.secret;
      const spy = setInterval(() => {
        if (!secret) return;
        for (const p of processes()) {
          if (t.processMarkers.some((m) => p.cmdline.includes(m))) spied.seen++;
          if (p.cmdline.includes(secret) || p.environ.includes(secret)) spied.leaks.push(p.cmdline);
        }
      }, 10);
      try {
        const vmId = nextVm++;
        shared = { vmId, ...(await backup(vmId)) };
      } finally {
        clearInterval(spy);
      }
    });

    afterAll(async () => {
      await t?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    const backup = (vmId: number, target = t.target(), only?: string) =>
      t.driver.backup(target, {
        vmId,
        imageId: 40 + vmId,
        files: only ? files.filter((f) => f.name === only) : files,
        template: TEMPLATE,
      });

    it('backs up two disks and the template, and restores them byte for byte', async () => {
      // Each disk's sha256 as it streamed: that of the source file's bytes, verified on read-back.
      expect(shared.files).toEqual([
        { name: 'disk.0.raw', size: 64 * MiB, sha256: sums.get('disk.0.raw') },
        { name: 'disk.1.qcow2', size: 300 * 1024 + 5, sha256: sums.get('disk.1.qcow2') },
      ]);
      expect(Date.parse(shared.verifiedAt ?? '')).toBeGreaterThan(Date.now() - 15 * 60_000);
      const toDir = join(work, 'restore');
      const restored = await t.driver.restore(t.target(), {
        vmId: shared.vmId,
        backupId: shared.backupId,
        files: ['disk.0.raw', 'disk.1.qcow2', 'vm.xml'],
        toDir,
      });
      expect(restored.map((r) => r.path)).toEqual(
        ['disk.0.raw', 'disk.1.qcow2', 'vm.xml'].map((n) => join(toDir, n)),
      );
      for (const r of restored) expect(await sha256(r.path), r.name).toBe(sums.get(r.name));
      expect(restored[0]?.size).toBe(64 * MiB);
    });

    it('downloads one file, stat gives the sizes the backup reported, verify passes', async () => {
      const ref = { vmId: shared.vmId, backupId: shared.backupId };
      // As the runner hands it: an empty 0600 file it created exclusively in a folder it made.
      await mkdir(join(work, 'download'), { mode: 0o700 });
      const toPath = join(work, 'download', 'small.img');
      await writeFile(toPath, '', { flag: 'wx', mode: 0o600 });
      const { size } = await t.driver.download(t.target(), { ...ref, file: 'disk.1.qcow2', toPath });
      expect(size).toBe(300 * 1024 + 5);
      expect(await sha256(toPath)).toBe(sums.get('disk.1.qcow2'));
      // Nothing else was written beside it (no temporary file left, no other name).
      expect(readdirSync(join(work, 'download'))).toEqual(['small.img']);
      expect(byName(await t.driver.stat(t.target(), ref))).toEqual(
        byName(shared.files.map(({ name, size }) => ({ name, size }))),
      );
      await expect(t.driver.verify(t.target(), ref)).resolves.toBeUndefined();
      // Against the sums recorded at backup time: passes; a sum that is not the file's names it.
      const recorded = Object.fromEntries(shared.files.map((f) => [f.name, f.sha256 ?? '']));
      await expect(t.driver.verify(t.target(), { ...ref, sums: recorded })).resolves.toBeUndefined();
      const wrong = { ...recorded, 'disk.1.qcow2': '0'.repeat(64) };
      const error = await t.driver
        .verify(t.target(), { ...ref, sums: wrong })
        .catch((e: unknown) => e as Error);
      expect(error).toMatchObject({ name: 'BackupVerifyFailed' });
      expect((error as Error).message).toContain('disk.1.qcow2');
    });

    logic(
      'verify of a stored backup damaged later fails naming the file; an untouched one passes',
      async () => {
        const vmId = nextVm++;
        const path = join(work, `later-${vmId}.img`);
        await writeFile(path, randomBytes(2 * MiB + 11));
        const since = Date.now();
        const out = await t.driver.backup(t.target(), {
          vmId,
          imageId: 40 + vmId,
          files: [{ name: 'disk.0.raw', source: { kind: 'file', path } }],
          template: TEMPLATE,
        });
        const ref = { vmId, backupId: out.backupId };
        const sums = { 'disk.0.raw': out.files[0]?.sha256 ?? '' };
        await expect(t.driver.verify(t.target(), { ...ref, sums })).resolves.toBeUndefined();
        await t.damage({ ...ref, file: 'disk.0.raw', since });
        const error = await t.driver.verify(t.target(), { ...ref, sums }).catch((e: unknown) => e as Error);
        expect(error).toMatchObject({ name: 'BackupVerifyFailed' });
        expect((error as Error).message).toContain('disk.0.raw');
        // The shared backup, untouched, still verifies.
        await expect(
          t.driver.verify(t.target(), { vmId: shared.vmId, backupId: shared.backupId }),
        ).resolves.toBeUndefined();
      },
    );

    logic('streams an NBD export without a copy, or refuses it clearly', async () => {
      const vmId = nextVm++;
      const sock = join(work, `nbd-${vmId}.sock`);
      const sparse = files[0]?.source.kind === 'file' ? files[0].source.path : '';
      const server = spawn('qemu-nbd', ['-t', '-r', '-k', sock, '-f', 'raw', sparse], { stdio: 'ignore' });
      try {
        for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
        const nbd = {
          name: 'disk.0.raw',
          source: { kind: 'nbd', uri: `nbd+unix:///?socket=${sock}`, size: 64 * MiB },
        } as const;
        const attempt = t.driver.backup(t.target(), { vmId, imageId: 1, files: [nbd], template: TEMPLATE });
        if (!t.streamsNbd) {
          await expect(attempt).rejects.toMatchObject({ name: 'UnsupportedSource' });
          return;
        }
        const out = await attempt;
        // The sha256 of the NBD stream as it went by: that of the exported disk's bytes.
        expect(out.files[0]?.sha256).toBe(sums.get('disk.0.raw'));
        const toPath = join(work, `nbd-${vmId}.raw`);
        await writeFile(toPath, '', { flag: 'wx', mode: 0o600 });
        await t.driver.download(t.target(), { vmId, backupId: out.backupId, file: 'disk.0.raw', toPath });
        expect(await sha256(toPath)).toBe(sums.get('disk.0.raw'));
      } finally {
        server.kill('SIGTERM');
      }
    });

    logic(
      'a backup whose stored data is damaged before it is read back fails, naming the disk, and is not kept',
      async () => {
        const vmId = nextVm++;
        // Fresh random bytes: the damaged data is this backup's own, shared with no other backup.
        const path = join(work, `damaged-${vmId}.img`);
        await writeFile(path, randomBytes(2 * MiB + 3));
        const since = Date.now();
        let stored: { backupId: string; names: string[] } | undefined;
        let verifying = false;
        let verified = false;
        const error = await t.driver
          .backup(
            t.target(),
            {
              vmId,
              imageId: 40 + vmId,
              files: [
                { name: 'disk.0.raw', source: { kind: 'file', path } },
                files[1] as { name: string; source: DiskSource },
              ],
              template: TEMPLATE,
            },
            {
              onVerifying: () => {
                verifying = true;
              },
              onVerified: () => {
                verified = true;
              },
              afterStore: async (out) => {
                stored = { backupId: out.backupId, names: out.files.map((f) => f.name) };
                await t.damage({ vmId, backupId: out.backupId, file: 'disk.0.raw', since });
              },
            },
          )
          .then(
            () => undefined,
            (e: unknown) => e as Error,
          );
        expect(verifying).toBe(true);
        expect(verified).toBe(false);
        expect(stored?.names).toEqual(['disk.0.raw', 'disk.1.qcow2']);
        expect(error).toMatchObject({ name: 'BackupVerifyFailed' });
        expect(error?.message).toContain('disk.0.raw');
        expect(error?.message).not.toContain('disk.1.qcow2');
        // Never a complete backup: nothing to restore, and reconcile finds nothing to choke on.
        const ref = { vmId, backupId: stored?.backupId ?? '' };
        await expect(t.driver.stat(t.target(), ref)).rejects.toMatchObject({ name: 'BackupNotFound' });
        await expect(t.driver.reconcile(t.target(), { vmId })).resolves.toBeUndefined();
      },
    );

    it('monitor reports the capacity as numbers: the filesystem, and the bytes its backups take', async () => {
      const capacity = await t.driver.monitor(t.target());
      const { totalBytes, freeBytes, usedBytes } = capacity;
      for (const value of [totalBytes, freeBytes, usedBytes]) {
        expect(Number.isSafeInteger(value) && (value as number) >= 0).toBe(true);
      }
      expect(freeBytes as number).toBeLessThanOrEqual(totalBytes as number);
      // The shared backup of beforeAll is stored: the repositories hold bytes, fewer than the disk.
      expect(usedBytes as number).toBeGreaterThan(0);
      expect(usedBytes as number).toBeLessThan(totalBytes as number);
    });

    it('rm removes a backup, restoring it then fails with BackupNotFound, and rm again succeeds', async () => {
      const vmId = nextVm++;
      const out = await backup(vmId, t.target(), 'disk.1.qcow2');
      const ref = { vmId, backupId: out.backupId };
      await t.driver.rm(t.target(), ref);
      await expect(
        t.driver.restore(t.target(), { ...ref, files: ['disk.1.qcow2'], toDir: join(work, `gone-${vmId}`) }),
      ).rejects.toMatchObject({ name: 'BackupNotFound' });
      await expect(t.driver.stat(t.target(), ref)).rejects.toMatchObject({ name: 'BackupNotFound' });
      await expect(t.driver.rm(t.target(), ref)).resolves.toBeUndefined();
      // A VM that never had a backup: rm succeeds too.
      await expect(t.driver.rm(t.target(), { vmId: 9999, backupId: out.backupId })).resolves.toBeUndefined();
    });

    it('two backups give two ids, each restorable; concurrent first backups of a VM both succeed', async () => {
      const vmId = nextVm++;
      const small = () => backup(vmId, t.target(), 'disk.1.qcow2');
      const [a, b] = await Promise.all([small(), small()]);
      expect(a.backupId).not.toBe(b.backupId);
      for (const id of [a.backupId, b.backupId]) {
        expect(await t.driver.stat(t.target(), { vmId, backupId: id })).toEqual(
          a.files.map(({ name, size }) => ({ name, size })),
        );
      }
    });

    logic(
      'a wrong secret fails with DatastoreAuthFailed and the message does not hold the secret',
      async (ctx) => {
        if (!t.wrongSecret) return ctx.skip();
        const error = await backup(shared.vmId, t.wrongSecret(), 'disk.1.qcow2').catch(
          (e: unknown) => e as Error,
        );
        expect(error).toMatchObject({ name: 'DatastoreAuthFailed' });
        expect(String((error as Error).message)).not.toContain(t.secret ?? '\0');
      },
    );

    it('an unreachable server fails with DatastoreUnreachable', async (ctx) => {
      if (!t.unreachable) return ctx.skip();
      await expect(backup(nextVm++, t.unreachable())).rejects.toMatchObject({ name: 'DatastoreUnreachable' });
      await expect(t.driver.monitor(t.unreachable())).rejects.toMatchObject({ name: 'DatastoreUnreachable' });
    });

    it('the secret never appears in any process argument list or environment', async (ctx) => {
      if (!t.secret) return ctx.skip();
      // The spy watched the driver's processes during the shared backup (beforeAll).
      expect(spied.seen).toBeGreaterThan(0);
      expect(spied.leaks).toEqual([]);
    });

    it('cancelling a backup midway leaves no process behind, and the next backup succeeds', async () => {
      const vmId = nextVm++;
      const big = join(work, 'random.img');
      await writeFile(big, randomBytes(12 * MiB));
      const slow = t.target(t.slowAttributes);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 1500);
      const started = Date.now();
      const cancelled = t.driver
        .backup(
          slow,
          {
            vmId,
            imageId: 1,
            files: [{ name: 'disk.0.raw', source: { kind: 'file', path: big } }],
            template: TEMPLATE,
          },
          { signal: controller.signal, onProgress: (done) => done > 0 && controller.abort() },
        )
        .catch((e: unknown) => e as Error);
      const error = await cancelled;
      clearTimeout(timer);
      expect(error).toMatchObject({ name: 'Cancelled' });
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(await survivors(t.processMarkers)).toEqual([]);
      const out = await backup(vmId, t.target(), 'disk.1.qcow2');
      const restored = await t.driver.restore(t.target(), {
        vmId,
        backupId: out.backupId,
        files: ['disk.1.qcow2'],
        toDir: join(work, `after-cancel-${vmId}`),
      });
      expect(await sha256(restored[0]?.path ?? '')).toBe(sums.get('disk.1.qcow2'));
      // The cancelled backup left nothing a later reconcile would choke on.
      await expect(t.driver.reconcile(t.target(), { vmId })).resolves.toBeUndefined();
    });
  });
}

function byName<T extends { name: string }>(items: readonly T[]): T[] {
  return [...items].sort((a, b) => a.name.localeCompare(b.name));
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface Proc {
  pid: string;
  cmdline: string;
  environ: string;
  state: string;
}

/** Every process of this machine right now (vanished ones skipped). */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (pid === String(process.pid)) continue;
    try {
      out.push({
        pid,
        cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '),
        environ: readFileSync(`/proc/${pid}/environ`, 'utf8'),
        state: readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] ?? '?',
      });
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

/** Live (non-zombie) processes whose command line holds a marker, after a short grace period. */
async function survivors(markers: readonly string[]): Promise<string[]> {
  let live: string[] = [];
  for (let i = 0; i < 30; i++) {
    live = processes()
      .filter((p) => p.state !== 'Z' && markers.some((m) => p.cmdline.includes(m)))
      .map((p) => `${p.pid}: ${p.cmdline}`);
    if (live.length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return live;
}
