/**
 * Fresh VM state: the runner follows libvirt's domain events and reports a change at once, so
 * the API shows a domain defined, started, paused, resumed, stopped or undefined within about
 * two seconds, with the minute's inventory far away (set to ten minutes here). A VM backed up
 * right after it started is no longer refused as SUSPENDED (the inventory once caught it paused
 * while starting and kept it so until the next minute).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Vm } from '#core/model.ts';
import { createTestVm, type TestVm, virsh } from '../helpers/libvirt.ts';
import { backup, removeHome, type Stack, startStack, until } from './harness.ts';

const DOMAIN = 'lb-h11f-events';
/**
 * What "at once" means here: the event, a 200 ms debounce, one inventory read and one PUT.
 * Measured on this 2-core machine while other suites loaded it to a load average of 17 to 23:
 * medians of 1.0 to 1.7 s over the six changes, single ones up to 5.2 s (a new VM record, or
 * reports queued behind those other suites' domains' events). Each change must show within
 * {@link LATEST_MS}, and half of them within {@link MEDIAN_MS}; the minute's report is set to
 * ten minutes, so without the events none would show before that.
 */
const LATEST_MS = 10_000;
const MEDIAN_MS = 3000;

let stack: Stack;
let scratch: string;
let test: TestVm | undefined;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-events-'));
  // The minute's report (every 2 s in other e2e files) out of the way: only events can be quick.
  stack = await startStack({ env: { LIFEBOAT_RUNNER_INVENTORY_SECONDS: '600' } });
  await stack.host();
}, 180_000);

afterAll(async () => {
  await test?.destroy().catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

/** Polls the API until `domain` shows `state` (GONE also when it is no longer listed); answers the ms it took. */
async function seen(domain: string, state: Vm['state'], since: number): Promise<number> {
  await until(
    `${domain} ${state} in the API`,
    async () => {
      const { items } = await stack.api<{ items: Vm[] }>('GET', '/vms');
      const vm = items.filter((v) => v.domain === domain).sort((a, b) => b.id - a.id)[0];
      return vm?.state === state || (state === 'GONE' && !vm) ? true : undefined;
    },
    LATEST_MS,
    100,
  );
  return Date.now() - since;
}

describe('libvirt domain events', () => {
  it('a domain defined, started, paused, resumed, stopped and undefined shows in the API within seconds', async () => {
    // Each time runs from the moment virsh answered (the state changed) to the API showing it.
    test = await createTestVm({ name: DOMAIN, disks: [{ sizeMiB: 16, format: 'qcow2' }], running: false });
    const times: Record<string, number> = {};
    times.defined = await seen(DOMAIN, 'POWEROFF', Date.now());
    const steps: [string, string[], Vm['state']][] = [
      ['startedPaused', ['start', DOMAIN, '--paused'], 'SUSPENDED'],
      ['resumed', ['resume', DOMAIN], 'RUNNING'],
      ['suspended', ['suspend', DOMAIN], 'SUSPENDED'],
      ['stopped', ['destroy', DOMAIN], 'POWEROFF'],
      ['undefined', ['undefine', DOMAIN, '--checkpoints-metadata'], 'GONE'],
    ];
    for (const [what, args, state] of steps) {
      await virsh(...args);
      times[what] = await seen(DOMAIN, state, Date.now());
    }
    await virsh('define', join(test.dir, 'domain.xml'));
    console.log('ms from the change to the API showing it', times);

    const sorted = Object.values(times).sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length / 2) - 1], 'median').toBeLessThan(MEDIAN_MS);
    const logs = await stack.logs();
    expect(logs).toContain('libvirt domain event: inventory to report');
  }, 120_000);

  it('a VM backed up as soon as the API shows it started is backed up, not refused as SUSPENDED', async () => {
    const datastore = await stack.json<Datastore>([
      'datastore',
      'create',
      '--name',
      'events',
      '--driver',
      'restic',
      '--attr',
      `BASE_PATH=${join(scratch, 'repo')}`,
      '--attr',
      'RESTIC_PASSWORD=events-password-1',
    ]);
    const vm = await stack.vm(DOMAIN, 'POWEROFF');
    await virsh('start', DOMAIN);
    expect(await seen(DOMAIN, 'RUNNING', Date.now())).toBeLessThan(LATEST_MS);
    const done = await backup(stack, vm.id, datastore.id);
    expect(done.stderr).not.toContain('SUSPENDED');
    expect((done.execution as Execution | undefined)?.state).toBe('SUCCEEDED');
  }, 180_000);
});
