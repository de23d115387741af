/**
 * The runner's place in the control plane: find-or-create its host record (which carries the
 * host's SQS queue), and report the libvirt domains it sees at start and then periodically.
 */
import type { InventoryVm } from '#core/contracts/api.ts';
import type { Host } from '#core/model.ts';
import { ApiAnswerError, type RunnerApi } from './api-client.ts';
import type { Logger } from './log.ts';

/** The host as the runner needs it: id and queue. */
export interface RegisteredHost {
  id: number;
  name: string;
  queueUrl: string;
}

function registered(host: Host): RegisteredHost {
  if (!host.queueUrl) throw new Error(`host ${host.id} (${host.name}) has no task queue`);
  return { id: host.id, name: host.name, queueUrl: host.queueUrl };
}

/**
 * The host called `name`, registered through the API if it is not yet. A concurrent registration
 * of the same name (409) is resolved by reading the list again.
 */
export async function registerHost(api: RunnerApi, name: string): Promise<RegisteredHost> {
  const find = async () => {
    const { items } = await api.get<{ items: Host[] }>('/hosts');
    return items.find((h) => h.name === name);
  };
  const existing = await find();
  if (existing) return registered(existing);
  try {
    return registered(await api.post<Host>('/hosts', { name }));
  } catch (error) {
    if (!(error instanceof ApiAnswerError && error.httpStatus === 409)) throw error;
    const raced = await find();
    if (!raced) throw error;
    return registered(raced);
  }
}

/** Reads every domain of this host (`drivers/disk/inventory.ts` in production). */
export type InventoryReader = () => Promise<InventoryVm[]>;

/** Sends one inventory report; answers how many VMs it named. */
export async function reportInventory(
  api: RunnerApi,
  hostId: number,
  read: InventoryReader,
  runnerVersion: string,
): Promise<number> {
  const vms = await read();
  await api.put(`/hosts/${hostId}/inventory`, { vms, runnerVersion });
  return vms.length;
}

/**
 * Reports the inventory now and then every `intervalSeconds` until `signal` aborts. A failed
 * report (libvirt down, API unreachable) is logged and retried at the next tick: the runner keeps
 * working on its queue meanwhile.
 */
export function startInventoryLoop(opts: {
  api: RunnerApi;
  hostId: number;
  read: InventoryReader;
  runnerVersion: string;
  intervalSeconds: number;
  log: Logger;
  signal: AbortSignal;
}): Promise<void> {
  const tick = async () => {
    try {
      const count = await reportInventory(opts.api, opts.hostId, opts.read, opts.runnerVersion);
      opts.log('debug', 'inventory reported', { vms: count });
    } catch (error) {
      opts.log('warn', 'inventory report failed', { error: (error as Error).message });
    }
  };
  return (async () => {
    while (!opts.signal.aborted) {
      await tick();
      await sleep(opts.intervalSeconds * 1000, opts.signal);
    }
  })();
}

/** Resolves after `ms` or as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
