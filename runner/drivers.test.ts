/**
 * The runner's disk drivers come from the one registry (drivers/disk/registry.ts): a task's
 * `disks[].driver` picks one, a task of an older control plane (no field) gets file disks.
 */
import { describe, expect, it } from 'vitest';
import { BackupTask } from '#core/contracts/tasks.ts';
import { diskDrivers } from '#drivers/disk/registry.ts';
import { hostDrivers } from '#runner/drivers.ts';
import { backupTask } from './testing/fakes.ts';

describe('runner disk drivers', () => {
  it('a disk with no driver (an older control plane) is a file disk, through the registry default', () => {
    const task = backupTask();
    const { driver: _driver, ...disk } = task.disks[0] as (typeof task.disks)[number];
    const parsed = BackupTask.parse({ ...task, disks: [disk] });
    expect(parsed.disks[0]?.driver).toBeUndefined();
    const drivers = hostDrivers('qemu:///system');
    expect(drivers.disk(parsed.disks[0]?.driver).name).toBe('qcow2');
  });

  it('uses every registered driver, and refuses one this build does not have by name', () => {
    const drivers = hostDrivers('qemu:///system');
    expect(drivers.disks().map((d) => d.name)).toEqual(
      diskDrivers()
        .all()
        .map((d) => d.name),
    );
    expect(() => drivers.disk('vmdk')).toThrow(expect.objectContaining({ name: 'ValidationError' }));
    expect(() => drivers.disk('vmdk')).toThrow(/disk driver "vmdk" is not available on this runner/);
  });
});
