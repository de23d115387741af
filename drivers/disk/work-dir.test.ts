import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeQemuReachableDir, QEMU_REACHABLE_MODE } from './work-dir.ts';

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('makeQemuReachableDir', () => {
  let base: string;
  let umask: number;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'lifeboat-workdir-'));
    // The systemd unit's UMask=0077.
    umask = process.umask(0o077);
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(base, { recursive: true, force: true });
  });

  it('makes the folder and every missing parent 0711 under UMask=0077, so QEMU reaches the overlays', async () => {
    const work = join(base, 'state', 'work', 'task-1');
    await makeQemuReachableDir(work);
    for (const dir of [join(base, 'state'), join(base, 'state', 'work'), work]) {
      expect(await modeOf(dir)).toBe(QEMU_REACHABLE_MODE);
    }
  });

  it('leaves folders that already exist as they are', async () => {
    const state = join(base, 'state');
    await mkdir(state, { mode: 0o700 });
    await makeQemuReachableDir(join(state, 'work'));
    expect(await modeOf(state)).toBe(0o700);
    expect(await modeOf(join(state, 'work'))).toBe(0o711);
    // Again: nothing to create, nothing changed.
    await makeQemuReachableDir(join(state, 'work'));
    expect(await modeOf(join(state, 'work'))).toBe(0o711);
  });
});
