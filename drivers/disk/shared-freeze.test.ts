import { describe, expect, it } from 'vitest';
import { freeze } from './freeze.ts';
import { type Freezer, SharedFreeze } from './shared-freeze.ts';

/** A freezer that records what happens, in order. */
function recorder() {
  const events: string[] = [];
  const freezer: Freezer = async (domain, mode, state) => {
    events.push(`freeze ${domain} ${mode} ${state}`);
    return async () => {
      events.push('thaw');
    };
  };
  return { events, freezer };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('SharedFreeze', () => {
  it('freezes once when every driver reached its snapshot, thaws after the last one is done', async () => {
    const { events, freezer } = recorder();
    const gate = new SharedFreeze(2, freezer);
    const driver = (name: string, delay: number) => async () => {
      await new Promise((resolve) => setTimeout(resolve, delay));
      events.push(`${name} at snapshot`);
      const thaw = await freeze('vm1', 'AGENT', 'running', {});
      events.push(`${name} snapshot`);
      await tick();
      await thaw();
      return name;
    };
    const done = await Promise.all([gate.join(0, driver('files', 5)), gate.join(1, driver('rbd', 40))]);
    expect(done).toEqual(['files', 'rbd']);
    expect(events.slice(0, 3)).toEqual(['files at snapshot', 'rbd at snapshot', 'freeze vm1 AGENT running']);
    expect(events.slice(3, 5).sort()).toEqual(['files snapshot', 'rbd snapshot']);
    expect(events.slice(5)).toEqual(['thaw']);
  });

  it('pauses the guest for the snapshots with FS_FREEZE=NONE: one instant for both drivers', async () => {
    const { events, freezer } = recorder();
    const gate = new SharedFreeze(2, freezer);
    const driver = async () => {
      const thaw = await freeze('vm1', 'NONE', 'running', {});
      await thaw();
    };
    await Promise.all([gate.join(0, driver), gate.join(1, driver)]);
    expect(events).toEqual(['freeze vm1 SUSPEND running', 'thaw']);
  });

  it('does not wait for a driver that finished without a snapshot (a stopped VM)', async () => {
    const { events, freezer } = recorder();
    const gate = new SharedFreeze(2, freezer);
    const snapshotting = gate.join(0, async () => {
      const thaw = await freeze('vm1', 'NONE', 'shut off', {});
      await thaw();
    });
    await gate.join(1, async () => {
      await tick();
    });
    await snapshotting;
    expect(events).toEqual(['freeze vm1 NONE shut off', 'thaw']);
  });

  it('a driver failing before its snapshot stops the others at the freeze: nothing is frozen', async () => {
    const { events, freezer } = recorder();
    const gate = new SharedFreeze(2, freezer);
    const waiting = gate.join(0, async () => {
      await freeze('vm1', 'SUSPEND', 'running', {});
      events.push('snapshot taken');
    });
    const failing = gate.join(1, async () => {
      await tick();
      throw new Error('base snapshot gone');
    });
    await expect(failing).rejects.toThrow('base snapshot gone');
    await expect(waiting).rejects.toMatchObject({
      name: 'SharedFreezeAborted',
      message: 'another disk driver of this backup failed: base snapshot gone',
    });
    expect(events).toEqual([]);
  });

  it('a failed freeze fails every driver waiting for it', async () => {
    const gate = new SharedFreeze(2, async () => {
      throw new Error('agent not connected');
    });
    const driver = () => freeze('vm1', 'AGENT', 'running', {});
    const results = await Promise.allSettled([gate.join(0, driver), gate.join(1, driver)]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'ok'))).toEqual([
      'agent not connected',
      'agent not connected',
    ]);
  });
});
