import { describe, expect, it } from 'vitest';
import type { Datastore, Vm } from '#core/model.ts';
import { demoDecision } from './demo.ts';

const vm = (state: Vm['state']) => ({ id: 1, state }) as Vm;
const datastore = { id: 100 } as Datastore;

describe('demoDecision', () => {
  it('offers the demo only on a host with no VMs and no datastores', () => {
    expect(demoDecision([], [], true)).toBe('offer');
    expect(demoDecision([vm('RUNNING')], [], true)).toBe('has-vms');
    expect(demoDecision([], [datastore], true)).toBe('has-datastores');
  });

  it('counts VMs that are gone from the host as no VMs', () => {
    expect(demoDecision([vm('GONE')], [], true)).toBe('offer');
  });

  it("'always' ignores the host's VMs but never existing datastores", () => {
    expect(demoDecision([vm('POWEROFF')], [], 'always')).toBe('offer');
    expect(demoDecision([vm('POWEROFF')], [datastore], 'always')).toBe('has-datastores');
  });
});
