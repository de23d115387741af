/**
 * `lifeboat host list | show HOSTID | update HOSTID | disable HOSTID | enable HOSTID |
 * enroll NAME`: the hypervisors, the state of their runners (MONITORED, OFFLINE when silent,
 * DISABLED by an admin), their EMULATOR_CPUS and MAX_BACKUPS_HOST, and the one-time tokens new
 * runners register with.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { Host } from '#core/model.ts';
import { parseId, parseOwnerSpec } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { UsageError } from '../errors.ts';
import { type Column, formatDetails, printJson, printLines, printList } from '../output.ts';

const COLUMNS: readonly Column<Host>[] = [
  { header: 'ID', value: (host) => host.id },
  { header: 'NAME', value: (host) => host.name },
  { header: 'CLUSTER', value: (host) => host.cluster },
  { header: 'STATE', value: (host) => host.state },
  { header: 'RUNNER', value: (host) => host.runnerVersion },
  { header: 'LAST HEARTBEAT', value: (host) => host.lastHeartbeat },
];

/** `--expires SECONDS`: a positive integer. */
function parseSeconds(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) === 0) {
    throw new InvalidArgumentError('Expected a number of seconds (a positive integer).');
  }
  return Number(value);
}

/** `--owner USER[:GROUP]`, `:GROUP`, or '' (none: admin owns what the inventory finds). */
function parseDefaultOwner(value: string): Record<string, string | null> {
  if (value === '') return { defaultOwner: null, defaultGroup: null };
  const spec = parseOwnerSpec(value);
  if (spec.owner === undefined) return { defaultGroup: spec.group ?? null };
  return { defaultOwner: spec.owner, defaultGroup: spec.group ?? null };
}

/** What `POST /hosts/enroll` answers. */
interface Enrollment {
  name: string;
  token: string;
  expiresAt: string;
}

/** `alice:web`, `alice` (her own group), or `admin` when the host names none. */
function defaultOwner(host: Host): string {
  if (!host.defaultOwner) return 'admin';
  return host.defaultGroup ? `${host.defaultOwner}:${host.defaultGroup}` : host.defaultOwner;
}

/** Adds the `host` command group to `program`. */
export function registerHost(program: Command): void {
  const host = requireSubcommand(program.command('host').description('hypervisor hosts and their runners'));

  host
    .command('list')
    .description('list the hosts')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const items = await context.client().list<Host>('/hosts');
      printList(context.output, items, COLUMNS, 'no hosts');
    });

  host
    .command('update')
    .description("change a host: EMULATOR_CPUS (pins restored VMs' emulator threads) and MAX_BACKUPS_HOST")
    .argument('<HOSTID>', 'host id', parseId)
    .option('--emulator-cpus <LIST>', "CPU list such as 0-1,4 ('' removes it)")
    .option('--max-backups-host <N>', "backups at once on this host ('' for the deployment's default)")
    .option(
      '--owner <USER[:GROUP]>',
      "owner (and group) of the VMs first seen here whose metadata names none; :GROUP the group only; '' admin",
      parseDefaultOwner,
    )
    .action(
      async (
        id: number,
        options: { emulatorCpus?: string; maxBackupsHost?: string; owner?: Record<string, string | null> },
        command: Command,
      ) => {
        const body: Record<string, unknown> = { ...options.owner };
        if (options.emulatorCpus !== undefined) body.emulatorCpus = options.emulatorCpus;
        if (options.maxBackupsHost !== undefined) {
          if (options.maxBackupsHost !== '' && !/^\d+$/.test(options.maxBackupsHost)) {
            throw new UsageError('--max-backups-host must be a positive integer, or empty for the default');
          }
          body.maxBackupsHost = options.maxBackupsHost === '' ? null : Number(options.maxBackupsHost);
        }
        if (Object.keys(body).length === 0) {
          throw new UsageError('host update needs --emulator-cpus, --max-backups-host or --owner');
        }
        const context = contextOf(command);
        const item = await context.client().patch<Host>(`/hosts/${id}`, body);
        if (context.output.json) return printJson(item);
        printLines([
          `host ${item.id}: EMULATOR_CPUS ${item.emulatorCpus ?? '-'}, MAX_BACKUPS_HOST ${item.maxBackupsHost ?? 'default'}, ` +
            `DEFAULT OWNER ${defaultOwner(item)}`,
        ]);
      },
    );

  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    host
      .command(name)
      .description(
        disabled
          ? 'DISABLED: the host starts no new work (queued work waits) until enabled; running work goes on'
          : 'enable a DISABLED host again: MONITORED (OFFLINE while its runner is silent); waiting work starts',
      )
      .argument('<HOSTID>', 'host id', parseId)
      .action(async (id: number, _options: unknown, command: Command) => {
        const context = contextOf(command);
        const item = await context.client().patch<Host>(`/hosts/${id}`, { disabled });
        if (context.output.json) return printJson(item);
        printLines([`host ${item.id}: ${item.state}`]);
      });
  }

  host
    .command('enroll')
    .description('a one-time token a new runner registers with (printed once, on stdout)')
    .argument('<NAME>', "the host's name, as its runner registers (its host name by default)")
    .option('--expires <SECONDS>', 'how long the token works (default 3600)', parseSeconds)
    .action(async (name: string, options: { expires?: number }, command: Command) => {
      const context = contextOf(command);
      const body = { name, ...(options.expires !== undefined ? { expiresInSeconds: options.expires } : {}) };
      const enrollment = await context.client().post<Enrollment>('/hosts/enroll', body);
      if (context.output.json) return printJson(enrollment);
      // The token alone on stdout (`TOKEN=$(lifeboat host enroll kvm-1)`), the how-to on stderr.
      printLines([enrollment.token]);
      process.stderr.write(
        `enrollment token for host "${enrollment.name}", valid until ${enrollment.expiresAt} and for one ` +
          'registration: give it to that runner as LIFEBOAT_ENROLL_TOKEN or in a file named by --enroll-token-file\n',
      );
    });

  host
    .command('show')
    .description('show one host')
    .argument('<HOSTID>', 'host id', parseId)
    .action(async (id: number, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<Host>(`/hosts/${id}`);
      if (context.output.json) return printJson(item);
      printLines(
        formatDetails([
          ['ID', item.id],
          ['NAME', item.name],
          ['CLUSTER', item.cluster],
          ['STATE', item.state],
          ['RUNNER VERSION', item.runnerVersion],
          ['LAST HEARTBEAT', item.lastHeartbeat],
          ['QUEUE', item.queueUrl],
          ['PUBLIC KEY', item.publicKey ? 'registered' : undefined],
          ['EMULATOR_CPUS', item.emulatorCpus],
          ['MAX_BACKUPS_HOST', item.maxBackupsHost],
          ['DEFAULT OWNER', defaultOwner(item)],
          ['CREATED', item.createdAt],
        ]),
      );
    });
}
