/**
 * The newcomer's demo: on a first `lifeboat local up` whose host has no VMs and which has no
 * datastores, make something to back up right away: a small running VM `lifeboat-demo` (one
 * 256 MiB qcow2 disk holding some data, under /var/lib/lifeboat/demo/) and a restic datastore
 * `demo-restic` in `<home>/demo-backups` whose random password lives only in the secret store.
 * Everything goes through the API and the runner, as an operator's own setup would.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Datastore, Host, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { httpApi } from '#runner/api-client.ts';
import { LIBVIRT_URI } from './libvirtd.ts';

export const DEMO_DOMAIN = 'lifeboat-demo';
export const DEMO_DIR = '/var/lib/lifeboat/demo';
export const DEMO_DATASTORE = 'demo-restic';

/** What the demo made, for the message and for tests. */
export interface DemoResult {
  vm: Vm;
  datastore: Datastore;
  /** The command to run next. */
  next: string;
}

/** Why no demo was made (`undefined` from {@link offerDemo} means one was). */
export type DemoDecision = 'offer' | 'has-datastores' | 'has-vms';

/**
 * The rule, pure: a demo only on a fresh setup. `always` ignores the host's VMs (a shared test
 * hypervisor), never existing datastores: those mean the operator has set things up already.
 */
export function demoDecision(
  vmsOfHost: readonly Vm[],
  datastores: readonly Datastore[],
  mode: true | 'always',
): DemoDecision {
  if (datastores.length > 0) return 'has-datastores';
  if (mode !== 'always' && vmsOfHost.some((vm) => vm.state !== 'GONE')) return 'has-vms';
  return 'offer';
}

async function poll<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const virsh = async (...args: string[]) =>
  (await run({ file: 'virsh', args: ['-c', LIBVIRT_URI, ...args] }, { timeoutMs: 60_000 })).stdout;

/** Domain type: kvm when QEMU may open /dev/kvm (local mode gives it the udev mode), else TCG. */
async function domainType(): Promise<'kvm' | 'qemu'> {
  return access('/dev/kvm').then(
    () => 'kvm',
    () => 'qemu',
  );
}

/**
 * Defines and starts `lifeboat-demo` unless it exists. Its disk gets two recognizable 8 MiB
 * regions (0x4c "L" at 0, 0x42 "B" at 64 MiB), written before the first start.
 */
async function ensureDemoDomain(): Promise<void> {
  const exists = await virsh('dominfo', DEMO_DOMAIN).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await mkdir(DEMO_DIR, { recursive: true, mode: 0o755 });
    const disk = join(DEMO_DIR, 'disk-0.qcow2');
    await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', disk, '256M'] });
    for (const command of ['write -P 0x4c 0 8M', 'write -P 0x42 64M 8M']) {
      await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', command, disk] });
    }
    const xml = `<domain type='${await domainType()}'>
  <name>${DEMO_DOMAIN}</name>
  <description>Lifeboat's demo VM (no OS: it idles in the firmware, which is all a backup needs)</description>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>
`;
    const xmlFile = join(DEMO_DIR, 'domain.xml');
    await writeFile(xmlFile, xml);
    await virsh('define', xmlFile);
  }
  const state = (await virsh('domstate', DEMO_DOMAIN)).trim();
  if (state !== 'running') await virsh('start', DEMO_DOMAIN);
}

/**
 * Makes the demo when {@link demoDecision} says so; answers what it made, or undefined.
 * `wakeRunner` asks the runner to report its inventory now (SIGHUP), so the new VM shows up
 * within seconds instead of at the next periodic report.
 */
export async function offerDemo(opts: {
  endpoint: string;
  token: string;
  home: string;
  mode: true | 'always';
  /** When this start began (ms): the host must have reported since. */
  startedAt: number;
  wakeRunner: () => void;
  timeoutMs?: number;
}): Promise<DemoResult | undefined> {
  // The admin's client (the runner's HTTP client, presenting the admin token).
  const api = httpApi(() => opts.endpoint)(opts.token);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const name = process.env.LIFEBOAT_RUNNER_NAME || hostname();
  // The runner registers once endpoint.json exists and reports its inventory right after.
  const host = await poll(
    'the local runner to report its host',
    async () => {
      const { items } = await api.get<{ items: Host[] }>('/hosts');
      // Reported by this start's runner (the record may be older than it): only then does it
      // handle SIGHUP, whose default action would end it.
      return items.find(
        (h) =>
          h.name === name && h.state === 'MONITORED' && Date.parse(h.lastHeartbeat ?? '') >= opts.startedAt,
      );
    },
    timeoutMs,
  );
  const hostVms = async () =>
    (await api.get<{ items: Vm[] }>('/vms')).items.filter((vm) => vm.hostId === host.id);
  const { items: datastores } = await api.get<{ items: Datastore[] }>('/datastores');
  if (demoDecision(await hostVms(), datastores, opts.mode) !== 'offer') return undefined;

  await ensureDemoDomain();
  const vm = await poll(
    `VM ${DEMO_DOMAIN} in the inventory`,
    async () => {
      opts.wakeRunner();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return (await hostVms()).find((v) => v.domain === DEMO_DOMAIN && v.state === 'RUNNING');
    },
    timeoutMs,
  );
  const datastore = await api.post<Datastore>('/datastores', {
    name: DEMO_DATASTORE,
    driver: 'restic',
    attributes: {
      BASE_PATH: join(opts.home, 'demo-backups'),
      // Kept only in the secret store: the API never returns it, nothing prints it.
      RESTIC_PASSWORD: randomBytes(24).toString('base64url'),
    },
  });
  return { vm, datastore, next: `npx lifeboat vm backup ${vm.id} -d ${datastore.id} --wait` };
}

/** The lines `local up` prints on stderr about the demo. */
export function describeDemo(demo: DemoResult, home: string): string[] {
  return [
    'lifeboat: a first start with no VMs and no datastores: made a demo to try a backup right away',
    `  VM ${demo.vm.id} "${DEMO_DOMAIN}": running, one 256 MiB qcow2 disk in ${DEMO_DIR}/`,
    `  datastore ${demo.datastore.id} "${DEMO_DATASTORE}": restic repository in ${join(home, 'demo-backups')} (password in the secret store only)`,
    `  first backup:  ${demo.next}`,
    '  (no demo: "demo": false in config.json of the home folder)',
  ];
}
