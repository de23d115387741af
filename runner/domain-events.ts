/**
 * libvirt's domain events as the runner follows them: a long-running
 * `virsh -c URI event --all --loop --timestamp` child whose stdout is read line by line, so that
 * a domain defined, undefined, started, paused, resumed, stopped or crashed is reported at once
 * instead of at the next minute's inventory. The child is started again with backoff whenever
 * it ends (libvirtd restarted, connection lost) and stopped through the signal.
 *
 * virsh's output is untrusted text (a domain name is whatever its owner chose): a line is only
 * ever a trigger, plus a domain name for the log. It is matched against one strict pattern;
 * anything else is logged (cut short) and ignored.
 */
import { run as runCommand } from '#drivers/exec.ts';
import type { Logger } from './log.ts';
import { sleep } from './register.ts';

/** One parsed event line: `[TIMESTAMP: ]event 'KIND' for domain 'NAME': DETAIL`. */
export interface DomainEvent {
  /** libvirt's event name (`lifecycle`, `metadata-change`, `block-job`, ...). */
  kind: string;
  /** The domain's name as virsh printed it (for the log only). */
  domain: string;
}

/**
 * Events that change what the inventory holds: the domain's existence and state (lifecycle),
 * its metadata (Lifeboat's backup settings), its devices (disks and NICs). Block jobs and the
 * like, which every backup causes, change none of it.
 */
const INVENTORY_EVENTS: ReadonlySet<string> = new Set([
  'lifecycle',
  'metadata-change',
  'device-added',
  'device-removed',
]);

/** Longer lines are not even matched (virsh prints nothing that long; keeps matching cheap). */
const MAX_LINE = 4096;
/** Longest domain name kept for the log (libvirt allows long ones; the log need not). */
const MAX_NAME = 100;

// `2026-12-06 09:11:04.443+0000: event 'lifecycle' for domain 'vm-1': Defined Added`
// The name ends at the first `': ` (or the closing `'` of a line without details): a name
// holding `': ` itself is cut there, which only shortens what the log shows.
const EVENT_LINE =
  /^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?[+-]\d{4}: )?event '([a-z0-9-]{1,40})' for domain '(.+?)'(?:: .*)?$/;

/**
 * Parses one line of `virsh event --timestamp` output; undefined for anything else. The name is
 * returned with control characters replaced and cut to {@link MAX_NAME} characters.
 */
export function parseEventLine(line: string): DomainEvent | undefined {
  if (line.length > MAX_LINE) return undefined;
  const match = EVENT_LINE.exec(line);
  if (!match) return undefined;
  const [, kind, name] = match as unknown as [string, string, string];
  const clean = name.replace(/[\p{Cc}\p{Cf}]/gu, '?');
  return { kind, domain: clean.length > MAX_NAME ? `${clean.slice(0, MAX_NAME)}...` : clean };
}

/** Whether `event` may change the inventory (and so deserves a report). */
export function changesInventory(event: DomainEvent): boolean {
  return INVENTORY_EVENTS.has(event.kind);
}

/** Backoff between restarts of the event child (ms). */
export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** A child that ran at least this long starts the backoff over. */
  resetAfterMs: number;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };

/** Malformed lines logged per child before the rest are only counted. */
const MALFORMED_LOGGED = 5;

/** What {@link followDomainEvents} needs. */
export interface FollowOptions {
  /** The runner's libvirt URI. */
  uri: string;
  /** Told about each event that may change the inventory. */
  onChange: (event: DomainEvent) => void;
  /**
   * Told when the event stream (re)started after a gap: events of the gap were missed, so the
   * whole inventory is worth reporting. Not called for the very first start.
   */
  onResumed?: () => void;
  log: Logger;
  /** Aborting stops the child and ends the loop. */
  signal: AbortSignal;
  backoff?: Backoff;
  /** Runs the child (drivers/exec.ts `run`); replaced in unit tests. */
  run?: typeof runCommand;
}

/**
 * Follows libvirt's events until `signal` aborts: starts the virsh child, feeds each line to
 * the parser, and when the child ends starts it again after 1 s, then 2, 4, ... up to 30 s
 * (reset once a child ran a minute). Never rejects.
 */
export async function followDomainEvents(opts: FollowOptions): Promise<void> {
  const backoff = opts.backoff ?? DEFAULT_BACKOFF;
  const run = opts.run ?? runCommand;
  let delay = backoff.initialMs;
  for (let start = 0; !opts.signal.aborted; start++) {
    if (start > 0) opts.onResumed?.();
    let malformed = 0;
    const onLine = (line: string) => {
      const event = parseEventLine(line);
      if (event) {
        if (changesInventory(event)) opts.onChange(event);
        return;
      }
      if (!line.trim()) return;
      if (++malformed <= MALFORMED_LOGGED)
        opts.log('warn', 'libvirt event line not understood: ignored', { line: line.slice(0, 200) });
    };
    const began = Date.now();
    let ending: string;
    try {
      await run(
        { file: 'virsh', args: ['-c', opts.uri, 'event', '--all', '--loop', '--timestamp'] },
        { signal: opts.signal, onStdoutLine: onLine },
      );
      ending = 'ended';
    } catch (error) {
      ending = (error as Error).message;
    }
    if (opts.signal.aborted) break;
    if (Date.now() - began >= backoff.resetAfterMs) delay = backoff.initialMs;
    opts.log('warn', 'libvirt event stream stopped: starting it again', {
      error: ending,
      retryInMs: delay,
      ...(malformed > MALFORMED_LOGGED && { malformedLines: malformed }),
    });
    await sleep(delay, opts.signal);
    delay = Math.min(backoff.maxMs, delay * 2);
  }
}
