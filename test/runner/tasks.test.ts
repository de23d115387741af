import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RestoreTask } from '#core/contracts/tasks.ts';
import type { PreparedBackup } from '#drivers/disk/driver.ts';
import { ChainBroken } from '#drivers/disk/errors.ts';
import { storedFormat } from '#runner/tasks/points.ts';
import { pointTemplateAtDisks, restoreFolder } from '#runner/tasks/restore.ts';
import { backupTask, fakeDrivers, fakeRunner, until } from './fakes.ts';

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
        backup: async (target, input) => {
          stored.push({
            secrets: target.secrets,
            files: input.files.map((f) => f.name),
            template: input.template,
          });
          return { backupId: 'snap-1', files: [{ name: 'disk.0.qcow2', size: 512 }] };
        },
      },
    );
    const r = await fakeRunner({ drivers, secrets: { 'ds/100': { RESTIC_PASSWORD: 'pw' } } });
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
        disks: [{ id: 0, size: 512, virtualSize: 1024, format: 'qcow2', file: 'disk.0.qcow2' }],
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
      'releasing',
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
    const r = await fakeRunner({ drivers, secrets: { 'ds/100': { RESTIC_PASSWORD: 's3cr3t-pw' } } });
    cleanups.push(r.remove);
    await r.executor.accept(backupTask());
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
    const r = await fakeRunner({ drivers, secrets: { 'ds/100': { RESTIC_PASSWORD: 'pw' } } });
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
    const r = await fakeRunner({ drivers, secrets: { 'ds/100': { RESTIC_PASSWORD: 'pw' } } });
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

  it('refuses folders with .. and puts relative ones under the state folder', () => {
    expect(restoreFolder('/srv/vms', '/var/lib/lifeboat/runner')).toBe('/srv/vms');
    expect(restoreFolder('web-1', '/var/lib/lifeboat/runner')).toBe(
      '/var/lib/lifeboat/runner/restores/web-1',
    );
    expect(() => restoreFolder('/srv/../etc', '/s')).toThrow(/must not contain \.\./);
    expect(storedFormat('disk.0.raw')).toBe('raw');
    expect(() => storedFormat('disk.0.vmdk')).toThrow(/neither/);
  });

  it('restores disks as <name>-disk-<id>.qcow2 and writes <name>.xml, never overwriting', async () => {
    const converted: [string, string, string][] = [];
    const drivers = fakeDrivers(
      {
        restoreDisk: async (file, format, toPath) => {
          converted.push([file.split('/').pop() as string, format, toPath]);
          await writeFile(toPath, 'qcow2');
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
    const r = await fakeRunner({ drivers, secrets: { 'ds/100': { RESTIC_PASSWORD: 'pw' } } });
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
      datastore: { id: 100, driver: 'restic', attributes: {}, secretRef: 'ds/100' },
      target,
      name: 'web-1-restored',
      template,
      increment: null,
      chain: [],
    };
    await r.executor.accept(task);
    await until(() => r.tokens.answers().length === 1);
    expect(converted).toEqual([['disk.1.raw', 'raw', join(target, 'web-1-restored-disk-1.qcow2')]]);
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
