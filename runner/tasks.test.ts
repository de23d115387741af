import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackupTask, DownloadTask, RestoreTask, VerifyTask } from '#core/contracts/tasks.ts';
import { BackupVerifyFailed } from '#drivers/datastore/errors.ts';
import type { PreparedBackup } from '#drivers/disk/driver.ts';
import { ChainBroken } from '#drivers/disk/errors.ts';
import { Qcow2Driver } from '#drivers/disk/qcow2-driver.ts';
import { driverForArtifact } from '#drivers/disk/registry.ts';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import type { Level, Logger } from '#runner/log.ts';
import { VERIFYING_MESSAGE } from '#runner/tasks/backup.ts';
import { pointTemplateAtDisks, restoreFolder } from '#runner/tasks/restore.ts';
import { backupTask, fakeDrivers, fakeRunner, sealedDatastore, until } from './testing/fakes.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function prepared(onRelease: () => void): PreparedBackup {
  return {
    files: [
      {
        diskId: 0,
        name: 'disk.0.qcow2',
        source: { kind: 'file', path: '/img/web-1.qcow2' },
        format: 'qcow2',
        virtualSize: 1024,
      },
    ],
    template: '<domain><name>web-1</name></domain>',
    state: 'RUNNING',
    release: async () => onRelease(),
  };
}

describe('backup task', () => {
  it('stores the prepared disks and template, gives the VM its disks back and answers BackupResult', async () => {
    let released = 0;
    const stored: unknown[] = [];
    const drivers = fakeDrivers(
      { prepareBackup: async () => prepared(() => released++) },
      {
        backup: async (target, input, ctx) => {
          stored.push({
            secrets: target.secrets,
            files: input.files.map((f) => f.name),
            template: input.template,
          });
          ctx?.onVerifying?.();
          ctx?.onVerified?.();
          return {
            backupId: 'snap-1',
            files: [{ name: 'disk.0.qcow2', size: 512, sha256: 'ab'.repeat(32) }],
            verifiedAt: '2026-12-06T16:00:00.000Z',
          };
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
    await until(() => r.tokens.answers().length === 1);

    expect(released).toBe(1);
    expect(stored).toEqual([
      {
        secrets: { RESTIC_PASSWORD: 'pw' },
        files: ['disk.0.qcow2'],
        template: '<domain><name>web-1</name></domain>',
      },
    ]);
    expect(r.tokens.answers()[0]).toEqual({
      call: 'success',
      token: 'token-1',
      output: {
        backupId: 'snap-1',
        disks: [
          {
            id: 0,
            size: 512,
            virtualSize: 1024,
            format: 'qcow2',
            file: 'disk.0.qcow2',
            sha256: 'ab'.repeat(32),
          },
        ],
        verifiedAt: '2026-12-06T16:00:00.000Z',
        increment: null,
        chainReset: null,
        template: '<domain><name>web-1</name></domain>',
        durationMs: expect.any(Number),
      },
    });
    // Progress lands on execution 17 (the taskId before its first /).
    expect(r.progress.map((p) => p.executionId)).toContain('17');
    expect(r.progress.map((p) => p.fields.phase).filter(Boolean)).toEqual([
      'preparing',
      'uploading',
      'verifying',
      'completing',
      'releasing',
    ]);
  });

  it('logs the start of the read-back (info, with the disk count and the task id) as the phase turns verifying', async () => {
    const lines: { level: Level; message: string; fields: Record<string, unknown> }[] = [];
    const recording = (bound: Record<string, unknown>): Logger =>
      Object.assign(
        (level: Level, message: string, fields: Record<string, unknown> = {}) =>
          lines.push({ level, message, fields: { ...bound, ...fields } }),
        { child: (more: Record<string, unknown>) => recording({ ...bound, ...more }) },
      );
    let loggedBeforeReadBack: string[] = [];
    const drivers = fakeDrivers(
      { prepareBackup: async () => prepared(() => {}) },
      {
        backup: async (_target, _input, ctx) => {
          ctx?.onVerifying?.();
          // The driver reads the stored disks back only after onVerifying returned.
          loggedBeforeReadBack = lines.map((l) => l.message);
          ctx?.onVerified?.();
          return { backupId: 'snap-1', files: [{ name: 'disk.0.qcow2', size: 512 }] };
        },
      },
    );
    const r = await fakeRunner({ drivers, log: recording({}) });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
    await until(() => r.tokens.answers().length === 1);
    expect(loggedBeforeReadBack).toContain(VERIFYING_MESSAGE);
    expect(lines.filter((l) => l.message === VERIFYING_MESSAGE)).toEqual([
      {
        level: 'info',
        message: 'verifying stored backup',
        fields: expect.objectContaining({ taskId: '17/RunOnHost', kind: 'backup', disks: 1 }),
      },
    ]);
  });

  it('a backup whose read-back does not match fails the task naming the disk; the point is undone', async () => {
    const releases: unknown[] = [];
    const drivers = fakeDrivers(
      {
        prepareBackup: async () => ({
          ...prepared(() => {}),
          release: async (options?: { failed?: boolean }) => {
            releases.push(options ?? {});
          },
        }),
      },
      {
        backup: async () => {
          throw new BackupVerifyFailed(
            'datastore 100: disk.0.qcow2 of backup b-1 (VM 7) reads back with sha256 00, not the ab sent: the stored data is damaged',
          );
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
    await until(() => r.tokens.answers().length === 1);
    // Released as after a failed upload: a SNAPSHOT point is undone, the increment can be tried again.
    expect(releases).toEqual([{ failed: true }]);
    expect(r.tokens.answers()).toEqual([
      {
        call: 'failure',
        token: 'token-1',
        error: 'BackupVerifyFailed',
        cause: expect.stringContaining('disk.0.qcow2 of backup b-1'),
      },
    ]);
  });

  it('releases the VM when the upload fails, and reports the upload error without the password', async () => {
    let released = 0;
    const drivers = fakeDrivers(
      { prepareBackup: async () => prepared(() => released++) },
      {
        backup: async () => {
          throw Object.assign(new Error('repository rejected password s3cr3t-pw'), {
            name: 'DatastoreAuthFailed',
          });
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask({ datastore: sealedDatastore({ RESTIC_PASSWORD: 's3cr3t-pw' }) }));
    await until(() => r.tokens.answers().length === 1);
    expect(released).toBe(1);
    expect(r.tokens.answers()).toEqual([
      {
        call: 'failure',
        token: 'token-1',
        error: 'DatastoreAuthFailed',
        cause: 'repository rejected password ***',
      },
    ]);
    const journal = await readFile(r.journal.file, 'utf8');
    expect(journal).not.toContain('s3cr3t-pw');
  });

  it('disks that name one driver in two ways (by name, and by default) are one driver’s, prepared once', async () => {
    const calls: { disks: number[]; workDir: string }[] = [];
    const drivers = fakeDrivers(
      {
        prepareBackup: async (_vm, disks, options) => {
          calls.push({ disks: disks.map((d) => d.id), workDir: options.workDir });
          return prepared(() => {});
        },
      },
      { backup: async () => ({ backupId: 'snap-1', files: [{ name: 'disk.0.qcow2', size: 512 }] }) },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    const [named] = backupTask().disks;
    const task = backupTask({
      disks: [
        named as BackupTask['disks'][number],
        { id: 1, target: 'vdb', source: '/var/lib/libvirt/images/web-1-b.qcow2', format: 'qcow2' },
      ],
    });
    await r.executor.accept(task);
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'success' });
    // One participant, in the task's own work folder: never two preparing at once in one part folder.
    expect(calls).toEqual([{ disks: [0, 1], workDir: expect.not.stringMatching(/disk-qcow2$/) }]);
  });
});

describe('backup task: datastore started while the disks are made stable', () => {
  it('starts the upload before the snapshot and lets it read only once prepareBackup resolved', async () => {
    const events: string[] = [];
    let snapshotDone!: () => void;
    const snapshot = new Promise<void>((resolve) => {
      snapshotDone = resolve;
    });
    const drivers = fakeDrivers(
      {
        prepareBackup: async (_vm, _disks, options) => {
          const p = prepared(() => events.push('released'));
          options.onFiles?.(p.files, p.template);
          await snapshot;
          events.push('snapshot made');
          return p;
        },
      },
      {
        readsEarly: true,
        backup: async (_target, input) => {
          events.push(`started ${input.files.map((f) => f.name).join()}`);
          const source = input.files[0]?.source;
          if (source?.kind === 'file') await source.ready;
          events.push('reading');
          return { backupId: 'snap-1', files: [{ name: 'disk.0.qcow2', size: 512 }] };
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
    await until(() => events.length === 1);
    expect(events).toEqual(['started disk.0.qcow2']);
    snapshotDone();
    await until(() => r.tokens.answers().length === 1);
    expect(events).toEqual(['started disk.0.qcow2', 'snapshot made', 'reading', 'released']);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'success', output: { backupId: 'snap-1' } });
  });

  it('a failed prepare stops the early upload before it reads, and reports the prepare error', async () => {
    const events: string[] = [];
    const drivers = fakeDrivers(
      {
        prepareBackup: async (_vm, _disks, options) => {
          const p = prepared(() => events.push('released'));
          options.onFiles?.(p.files, p.template);
          throw Object.assign(new Error('snapshot failed'), { name: 'DiskSnapshotFailed' });
        },
      },
      {
        readsEarly: true,
        backup: async (_target, input) => {
          const source = input.files[0]?.source;
          try {
            if (source?.kind === 'file') await source.ready;
            events.push('reading');
          } catch {
            events.push('stopped');
            throw new Error('killed');
          }
          return { backupId: 'snap-1', files: [] };
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
    await until(() => r.tokens.answers().length === 1);
    expect(events).toEqual(['stopped']);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'failure', error: 'DiskSnapshotFailed' });
  });
});

describe('sealed datastore secrets', () => {
  const untouched = () => {
    const calls: string[] = [];
    const drivers = fakeDrivers(
      {
        prepareBackup: async () => {
          calls.push('prepareBackup');
          return prepared(() => {});
        },
      },
      {
        backup: async () => {
          calls.push('backup');
          return { backupId: 'x', files: [] };
        },
      },
    );
    return { calls, drivers };
  };

  it('fails a task sealed to another host with a clear error, before touching the VM', async () => {
    const { calls, drivers } = untouched();
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    const otherHost = generateHostKeyPair();
    await r.executor.accept(
      backupTask({ datastore: sealedDatastore({ RESTIC_PASSWORD: 'their-pw' }, {}, otherHost) }),
    );
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()).toEqual([
      {
        call: 'failure',
        token: 'token-1',
        error: 'ValidationError',
        cause:
          "datastore 100: the task's secrets cannot be opened with this host's key (sealed to another host, or altered)",
      },
    ]);
    expect(calls).toEqual([]);
  });

  it("refuses another datastore's sealed secrets replayed in this datastore's task", async () => {
    const { calls, drivers } = untouched();
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    const ds101 = sealedDatastore({ RESTIC_PASSWORD: 'pw-101' }, { id: 101 });
    await r.executor.accept(backupTask({ datastore: { ...ds101, id: 100 } }));
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'failure', error: 'ValidationError' });
    expect(calls).toEqual([]);
  });

  it('tells a runner with no host key to enroll', async () => {
    const { calls, drivers } = untouched();
    const r = await fakeRunner({ drivers, hostKey: null });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({
      call: 'failure',
      error: 'Conflict',
      cause: expect.stringMatching(/no host key .*host-key\.pem.*lifeboat host enroll/),
    });
    expect(calls).toEqual([]);
  });

  it('needs no key for a datastore without secrets', async () => {
    const { calls, drivers } = untouched();
    const r = await fakeRunner({ drivers, hostKey: null });
    cleanups.push(r.remove);
    await r.executor.accept(
      backupTask({ datastore: { id: 100, driver: 'restic', attributes: {}, sealedSecrets: null } }),
    );
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'success' });
    expect(calls).toEqual(['prepareBackup', 'backup']);
  });
});

describe('backup task increments', () => {
  const increment = { chain: 9, parent: 0, id: 1, checkpoint: 'lifeboat-12', parentCheckpoint: 'lifeboat-7' };

  it('passes INCREMENT_MODE=SNAPSHOT to the disk driver, and a failed upload releases with failed: true', async () => {
    const asked: unknown[] = [];
    const releases: unknown[] = [];
    const drivers = fakeDrivers(
      {
        prepareBackup: async (_vm, _disks, options) => {
          asked.push(options.increment);
          return { ...prepared(() => {}), release: async (o) => void releases.push(o) };
        },
      },
      {
        backup: async () => {
          throw Object.assign(new Error('repository unreachable'), { name: 'DatastoreUnreachable' });
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(
      backupTask({ config: { FS_FREEZE: 'NONE', MODE: 'INCREMENT', INCREMENT_MODE: 'SNAPSHOT' }, increment }),
    );
    await until(() => r.tokens.answers().length === 1);
    expect(asked).toEqual([{ checkpoint: 'lifeboat-12', parent: 'lifeboat-7', index: 1, mode: 'SNAPSHOT' }]);
    // The point was not stored: the driver undoes its new overlay so the same increment can run again.
    expect(releases).toEqual([{ failed: true }]);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'failure', error: 'DatastoreUnreachable' });
  });

  it('passes the checkpoints to the disk driver, and answers a new chain with the reason when the parent is broken', async () => {
    const asked: unknown[] = [];
    const drivers = fakeDrivers(
      {
        prepareBackup: async (_vm, _disks, options) => {
          asked.push(options.increment);
          if (options.increment?.parent)
            throw new ChainBroken("Disk /img/a.qcow2 has no bitmap 'lifeboat-7'");
          return prepared(() => {});
        },
      },
      {
        backup: async () => ({ backupId: 'snap-2', files: [{ name: 'disk.0.qcow2', size: 512 }] }),
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    await r.executor.accept(
      backupTask({ config: { FS_FREEZE: 'NONE', MODE: 'INCREMENT', INCREMENT_MODE: 'CBT' }, increment }),
    );
    await until(() => r.tokens.answers().length === 1);
    expect(asked).toEqual([
      { checkpoint: 'lifeboat-12', parent: 'lifeboat-7', index: 1, mode: 'CBT' },
      { checkpoint: 'lifeboat-12', parent: null, index: 1, mode: 'CBT' },
    ]);
    expect(r.tokens.answers()[0]).toMatchObject({
      call: 'success',
      output: {
        increment: { id: 0, parent: null, checkpoint: 'lifeboat-12' },
        chainReset: "Disk /img/a.qcow2 has no bitmap 'lifeboat-7'",
      },
    });
  });
});

describe('restore task', () => {
  const template = `<domain type='kvm'><name>web-1</name><devices>
<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/iso/x.iso'/><target dev='sda' bus='sata'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/web-1.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/web-1-data.raw'/><target dev='vdb' bus='virtio'/></disk>
</devices></domain>`;

  it('points the template disks, by inventory id, at the restored qcow2 files', () => {
    const { xml, notes } = pointTemplateAtDisks(template, new Map([[1, '/restore/new-disk-1.qcow2']]));
    expect(xml).toContain('<source file="/restore/new-disk-1.qcow2"');
    // A disk not restored still names the original VM's file: left out, never shared.
    expect(xml).not.toContain('/img/web-1.qcow2');
    // The stored template is untrusted: the CD-ROM stays, ejected (its medium is a host file).
    expect(xml).not.toContain('/iso/x.iso');
    expect(xml).toContain('<disk type="file" device="cdrom">');
    expect(notes).toEqual(['ejected cdrom sda (was /iso/x.iso): its medium is of the original host']);
  });

  it('refuses folders with .., puts relative ones under the first restore root', async () => {
    const roots = { restoreRoots: ['/var/lib/lifeboat/restores', '/srv/restores'] };
    const relative = await restoreFolder({ target: 'web-1', confine: true }, roots);
    expect(relative.path).toBe('/var/lib/lifeboat/restores/web-1');
    await expect(restoreFolder({ target: '/srv/../etc', confine: false }, roots)).rejects.toThrow(
      /must not contain \.\./,
    );
    await expect(restoreFolder({ target: '/etc/cron.d', confine: true }, roots)).rejects.toThrow(
      /outside this host's restore roots/,
    );
    const drivers = [new Qcow2Driver()];
    expect(driverForArtifact(drivers, 'disk.0.raw').describeArtifact('disk.0.raw')).toEqual({
      diskId: 0,
      format: 'raw',
      increment: null,
    });
    expect(drivers[0]?.describeArtifact('disk.1.inc3.qcow2')).toEqual({
      diskId: 1,
      format: 'qcow2',
      increment: 3,
    });
    expect(() => driverForArtifact(drivers, 'disk.0.vmdk')).toThrow(/no disk driver/);
  });

  it('restores disks as <name>-disk-<id>.qcow2 (0600) and writes <name>.xml (0600), never overwriting', async () => {
    const converted: [string, string, string][] = [];
    const drivers = fakeDrivers(
      {
        restoreDisk: async (file, format, toPath) => {
          converted.push([file.split('/').pop() as string, format, toPath]);
          // As qemu-img does: a new file with the umask's mode.
          await writeFile(toPath, 'qcow2', { flag: 'wx', mode: 0o644 });
          return { path: toPath, format: 'qcow2', virtualSize: 1024, size: 5 };
        },
      },
      {
        restore: async (_t, ref) => {
          await mkdir(ref.toDir, { recursive: true });
          return Promise.all(
            ref.files.map(async (name) => {
              await writeFile(join(ref.toDir, name), 'data');
              return { name, path: join(ref.toDir, name), size: 4 };
            }),
          );
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    const target = join(r.dir, 'out');
    const task: RestoreTask = {
      v: 1,
      kind: 'restore',
      taskId: '40/RunOnHost',
      token: 'r1',
      heartbeatSeconds: 120,
      imageId: 9,
      vmId: 3,
      backupId: 'snap-1',
      disks: [{ id: 1, file: 'disk.1.raw' }],
      datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }),
      // An admin's absolute folder outside the restore roots, as the e2e tests restore.
      target,
      confine: false,
      name: 'web-1-restored',
      template,
      increment: null,
      chain: [],
    };
    await r.executor.accept(task);
    await until(() => r.tokens.answers().length === 1);
    // qemu-img wrote a fresh hidden name in the folder; only link() gave it its final name.
    expect(converted).toEqual([
      [
        'disk.1.raw',
        'raw',
        expect.stringMatching(/\/\.web-1-restored-disk-1\.qcow2\.[0-9a-f]{12}\.partial$/),
      ],
    ]);
    expect(converted[0]?.[2].startsWith(`${target}/`)).toBe(true);
    expect((await stat(join(target, 'web-1-restored-disk-1.qcow2'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(target, 'web-1-restored.xml'))).mode & 0o777).toBe(0o600);
    expect((await stat(target)).mode & 0o777).toBe(0o711);
    expect((await readdir(target)).sort()).toEqual(['web-1-restored-disk-1.qcow2', 'web-1-restored.xml']);
    expect(r.tokens.answers()[0]).toMatchObject({
      call: 'success',
      output: {
        disks: [{ id: 1, path: join(target, 'web-1-restored-disk-1.qcow2'), size: 5 }],
        templatePath: join(target, 'web-1-restored.xml'),
      },
    });
    expect(await readFile(join(target, 'web-1-restored.xml'), 'utf8')).toContain(
      `<source file="${join(target, 'web-1-restored-disk-1.qcow2')}"`,
    );

    await r.executor.accept({ ...task, taskId: '41/RunOnHost', token: 'r2' });
    await until(() => r.tokens.answers().length === 2);
    expect(r.tokens.answers()[1]).toMatchObject({
      call: 'failure',
      error: 'Conflict',
      cause: expect.stringMatching(/already exists/),
    });
  });
});

describe('confined writes', () => {
  const restoreTask = (target: string, confine: boolean): RestoreTask => ({
    v: 1,
    kind: 'restore',
    taskId: '50/RunOnHost',
    token: 'c1',
    heartbeatSeconds: 120,
    imageId: 9,
    vmId: 3,
    backupId: 'snap-1',
    disks: [{ id: 0, file: 'disk.0.raw' }],
    datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }),
    target,
    confine,
    name: 'copy',
    template: null,
    increment: null,
    chain: [],
  });
  const downloadTask = (toPath: string, confine: boolean, taskId = '60/RunOnHost'): DownloadTask => ({
    v: 1,
    kind: 'download',
    taskId,
    token: `t-${taskId}`,
    heartbeatSeconds: 120,
    vmId: 3,
    backupId: 'snap-1',
    datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }),
    file: 'disk.0.raw',
    toPath,
    confine,
  });
  /**
   * A datastore whose download writes into the path it is handed, recording it; it never writes
   * outside the system's temp folder, so running these tests on unconfined code is harmless.
   */
  function writingStore(calls: string[]) {
    const safe = (path: string) => {
      if (!path.startsWith(`${tmpdir()}/`)) throw new Error(`fake driver: not writing ${path}`);
    };
    return fakeDrivers(
      {
        restoreDisk: async (_file, _format, toPath) => {
          await writeFile(toPath, 'qcow2', { flag: 'wx' });
          return { path: toPath, format: 'qcow2', virtualSize: 1024, size: 5 };
        },
      },
      {
        download: async (_t, ref) => {
          calls.push(ref.toPath);
          safe(ref.toPath);
          await writeFile(ref.toPath, 'file data');
          return { size: 9 };
        },
        restore: async (_t, ref) => {
          calls.push(ref.toDir);
          await mkdir(ref.toDir, { recursive: true });
          return ref.files.map((name) => ({ name, path: join(ref.toDir, name), size: 4 }));
        },
      },
    );
  }

  it("a user's download to /root/.ssh/authorized_keys fails with the confinement error and writes nothing", async () => {
    const calls: string[] = [];
    const keys = '/root/.ssh/authorized_keys';
    const before = existsSync(keys) ? await readFile(keys) : null;
    const r = await fakeRunner({
      drivers: writingStore(calls),
    });
    cleanups.push(r.remove);
    await r.executor.accept(downloadTask(keys, true));
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({
      call: 'failure',
      error: 'Forbidden',
      cause: `download path "${keys}" is outside this host's restore roots (${join(r.dir, 'restores')}); only an admin may name another folder`,
    });
    expect(calls).toEqual([]);
    expect(existsSync(keys) ? await readFile(keys) : null).toEqual(before);
  });

  it('a relative download lands 0600 under the first root (folder 0700), never over an existing file', async () => {
    const calls: string[] = [];
    const r = await fakeRunner({
      drivers: writingStore(calls),
    });
    cleanups.push(r.remove);
    await r.executor.accept(downloadTask('exports/disk.raw', true));
    await until(() => r.tokens.answers().length === 1);
    const final = join(r.dir, 'restores', 'exports', 'disk.raw');
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'success', output: { path: final, size: 9 } });
    // The driver wrote a partial beside it, which was linked into place and removed.
    expect(calls).toEqual([expect.stringMatching(/\/exports\/\.disk\.raw\.[0-9a-f]{12}\.partial$/)]);
    expect(await readFile(final, 'utf8')).toBe('file data');
    expect((await stat(final)).mode & 0o777).toBe(0o600);
    expect((await stat(join(r.dir, 'restores', 'exports'))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(r.dir, 'restores', 'exports'))).toEqual(['disk.raw']);

    await r.executor.accept(downloadTask('exports/disk.raw', true, '61/RunOnHost'));
    await until(() => r.tokens.answers().length === 2);
    expect(r.tokens.answers()[1]).toMatchObject({
      call: 'failure',
      error: 'Conflict',
      cause: expect.stringContaining(`${final} already exists`),
    });
    expect(calls).toHaveLength(1);
  });

  it("an admin's download outside the roots works, but never through a symlink", async () => {
    const calls: string[] = [];
    const r = await fakeRunner({
      drivers: writingStore(calls),
    });
    cleanups.push(r.remove);
    await r.executor.accept(downloadTask(join(r.dir, 'admin', 'x.raw'), false));
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({ call: 'success' });
    expect(await readFile(join(r.dir, 'admin', 'x.raw'), 'utf8')).toBe('file data');

    await mkdir(join(r.dir, 'target'));
    await symlink(join(r.dir, 'target'), join(r.dir, 'link'));
    await r.executor.accept(downloadTask(join(r.dir, 'link', 'x.raw'), false, '62/RunOnHost'));
    await until(() => r.tokens.answers().length === 2);
    expect(r.tokens.answers()[1]).toMatchObject({
      call: 'failure',
      error: 'Forbidden',
      cause: expect.stringContaining(`${join(r.dir, 'link')} is a symbolic link`),
    });
    expect(await readdir(join(r.dir, 'target'))).toEqual([]);
  });

  it('a restore into a pool: refused before anything is downloaded for a pool the host does not allow, or disks that are no rbd images', async () => {
    const calls: string[] = [];
    const r = await fakeRunner({ drivers: writingStore(calls), restorePools: ['vms'] });
    cleanups.push(r.remove);
    await r.executor.accept({ ...restoreTask('copy', true), pool: 'other' });
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({
      call: 'failure',
      error: 'Forbidden',
      cause:
        'pool: this host does not allow restores into pool "other" (LIFEBOAT_RESTORE_POOLS of its runner)',
    });
    await r.executor.accept({
      ...restoreTask('copy', true),
      taskId: '52/RunOnHost',
      token: 'c3',
      pool: 'vms',
    });
    await until(() => r.tokens.answers().length === 2);
    expect(r.tokens.answers()[1]).toMatchObject({
      call: 'failure',
      error: 'ValidationError',
      cause: 'pool: disk 0 is a qcow2 backup; only rbd disks restore into a pool',
    });
    expect(calls).toEqual([]);
  });

  it("a user's restore outside the roots is refused before anything is downloaded; a relative one goes under the root", async () => {
    const calls: string[] = [];
    const r = await fakeRunner({
      drivers: writingStore(calls),
    });
    cleanups.push(r.remove);
    await r.executor.accept(restoreTask('/etc/cron.d', true));
    await until(() => r.tokens.answers().length === 1);
    expect(r.tokens.answers()[0]).toMatchObject({
      call: 'failure',
      error: 'Forbidden',
      cause: expect.stringContaining(`restore folder "/etc/cron.d" is outside this host's restore roots`),
    });
    expect(calls).toEqual([]);

    await r.executor.accept({ ...restoreTask('copy', true), taskId: '51/RunOnHost', token: 'c2' });
    await until(() => r.tokens.answers().length === 2);
    const disk = join(r.dir, 'restores', 'copy', 'copy-disk-0.qcow2');
    expect(r.tokens.answers()[1]).toMatchObject({
      call: 'success',
      output: { disks: [{ id: 0, path: disk }] },
    });
    expect((await stat(disk)).mode & 0o777).toBe(0o600);
    expect((await stat(join(r.dir, 'restores', 'copy'))).mode & 0o777).toBe(0o711);
  });
});

describe('verify task', () => {
  const verifyTask = (sums?: Record<string, string> | null): VerifyTask => ({
    v: 1,
    kind: 'verify',
    taskId: '70/RunOnHost',
    token: 't-70',
    heartbeatSeconds: 120,
    vmId: 3,
    backupId: 'snap-1',
    datastore: sealedDatastore({ RESTIC_PASSWORD: 'pw' }),
    ...(sums !== undefined && { sums }),
  });

  it('hands the driver the sha256 recorded at backup time, and reports its failure naming the file', async () => {
    const refs: unknown[] = [];
    const drivers = fakeDrivers(
      {},
      {
        verify: async (_target, ref) => {
          refs.push(ref);
          if (ref.sums?.['disk.0.raw'] === '0'.repeat(64)) {
            throw new BackupVerifyFailed(
              'datastore 100: disk.0.raw of backup snap-1 (VM 3) reads back with sha256 ab',
            );
          }
        },
      },
    );
    const r = await fakeRunner({ drivers });
    cleanups.push(r.remove);
    const sums = { 'disk.0.raw': 'ab'.repeat(32) };
    await r.executor.accept(verifyTask(sums));
    await r.executor.accept({ ...verifyTask(null), taskId: '71/RunOnHost', token: 't-71' });
    await r.executor.accept({
      ...verifyTask({ 'disk.0.raw': '0'.repeat(64) }),
      taskId: '72/RunOnHost',
      token: 't-72',
    });
    await until(() => r.tokens.answers().length === 3);
    expect(refs).toEqual([
      { vmId: 3, backupId: 'snap-1', sums },
      // An image from before verification: nothing recorded, the driver reads the data back only.
      { vmId: 3, backupId: 'snap-1' },
      { vmId: 3, backupId: 'snap-1', sums: { 'disk.0.raw': '0'.repeat(64) } },
    ]);
    const answers = r.tokens.answers();
    expect(answers.filter((a) => a.call === 'success')).toHaveLength(2);
    expect(answers.find((a) => a.call === 'failure')).toMatchObject({
      token: 't-72',
      error: 'BackupVerifyFailed',
      cause: expect.stringContaining('disk.0.raw'),
    });
  });
});
