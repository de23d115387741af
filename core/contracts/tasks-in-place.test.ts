import { describe, expect, it } from 'vitest';
import { RestoreTask } from './tasks.ts';

const task = (disk: object) => ({
  v: 1,
  kind: 'restore',
  taskId: 'x/RunOnHost',
  token: 't',
  heartbeatSeconds: 60,
  imageId: 1,
  vmId: 1,
  backupId: 'abc123',
  disks: [{ id: 0, file: 'disk.0.rbd' }],
  datastore: { id: 1, driver: 'restic', attributes: {}, sealedSecrets: null },
  target: 'x',
  confine: true,
  name: 'x',
  template: null,
  increment: null,
  chain: [],
  define: null,
  inPlace: { domain: 'web-1', disks: [{ id: 0, ...disk }], start: false },
});

describe('restore task: the disks an in-place restore writes over', () => {
  it('a file disk by its absolute path, an rbd disk by its image name', () => {
    expect(RestoreTask.safeParse(task({ source: '/img/a.qcow2', format: 'qcow2' })).success).toBe(true);
    expect(RestoreTask.safeParse(task({ source: 'rbd/web-1-vda', format: 'rbd' })).success).toBe(true);
  });

  it('refuses a relative file, an rbd image named as a path, and option-like or traversing names', () => {
    for (const disk of [
      { source: 'img/a.qcow2', format: 'raw' },
      { source: '/rbd/web-1-vda', format: 'rbd' },
      { source: '-x/img', format: 'rbd' },
      { source: 'rbd/../x', format: 'rbd' },
      { source: 'rbd/x', format: 'vmdk' },
    ]) {
      expect(RestoreTask.safeParse(task(disk)).success, JSON.stringify(disk)).toBe(false);
    }
  });
});
