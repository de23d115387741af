import { afterEach, describe, expect, it, vi } from 'vitest';
import { ExecError, type RunOptions } from '#drivers/exec.ts';
import { changesInventory, type DomainEvent, followDomainEvents, parseEventLine } from './domain-events.ts';
import type { Logger } from './log.ts';

// Lines as libvirt 9.0's `virsh event --all --loop --timestamp` printed them here.
const REAL = [
  "2026-12-06 09:11:04.443+0000: event 'lifecycle' for domain 'h11f-ev': Defined Added",
  "2026-12-06 09:11:05.721+0000: event 'lifecycle' for domain 'h11f-ev': Resumed Unpaused",
  "2026-12-06 09:11:05.738+0000: event 'lifecycle' for domain 'h11f-ev': Started Booted",
  "2026-12-06 09:11:05.831+0000: event 'lifecycle' for domain 'h11f-ev': Suspended Paused",
  "2026-12-06 09:11:08.442+0000: event 'lifecycle' for domain 'h11f-ev': Shutdown Finished after host request",
  "2026-12-06 09:11:08.468+0000: event 'lifecycle' for domain 'h11f-ev': Stopped Destroyed",
  "2026-12-06 09:11:10.494+0000: event 'metadata-change' for domain 'h11f-ev': type element, uri urn:lifeboat:vm:1",
  "2026-12-06 09:11:10.523+0000: event 'lifecycle' for domain 'h11f-ev': Undefined Removed",
];
const BLOCK_JOB =
  "2026-12-06 09:11:25.978+0000: event 'block-job' for domain 'h11f-ev': Active Block Commit for /x/ov.qcow2 ready";

describe('parseEventLine', () => {
  it('reads the event kind and domain of every line virsh prints', () => {
    for (const line of REAL) expect(parseEventLine(line)?.domain).toBe('h11f-ev');
    expect(REAL.map((l) => parseEventLine(l)?.kind)).toEqual([
      ...Array(6).fill('lifecycle'),
      'metadata-change',
      'lifecycle',
    ]);
    expect(parseEventLine("event 'reboot' for domain 'vm-1'")).toEqual({ kind: 'reboot', domain: 'vm-1' });
  });

  it('reports lifecycle, metadata and device changes, not block jobs', () => {
    for (const line of REAL) expect(changesInventory(parseEventLine(line) as DomainEvent)).toBe(true);
    expect(changesInventory(parseEventLine(BLOCK_JOB) as DomainEvent)).toBe(false);
  });

  it('refuses anything else, and keeps a hostile name harmless', () => {
    for (const line of [
      '',
      'garbage',
      "event 'lifecycle' for domain '': Started Booted",
      "event 'Life Cycle' for domain 'x': Started",
      "2026-12-06: event 'lifecycle' for domain 'x': Started",
      `event 'lifecycle' for domain '${'x'.repeat(5000)}': Started`,
      "prefix event 'lifecycle' for domain 'x': Started",
    ]) {
      expect(parseEventLine(line), line).toBeUndefined();
    }
    const odd = parseEventLine(
      `event 'lifecycle' for domain 'a\u001b[2Jb\u202e${'n'.repeat(300)}': Started Booted`,
    );
    expect(odd?.kind).toBe('lifecycle');
    expect(odd?.domain).toMatch(/^a\?\[2Jb\?n+\.\.\.$/);
    expect(odd?.domain.length).toBeLessThanOrEqual(103);
    // A name holding a quote is kept up to the detail.
    expect(parseEventLine("event 'lifecycle' for domain 'it's': Started Booted")?.domain).toBe("it's");
  });
});

/** A logger that keeps its lines. */
function recordingLogger() {
  const lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  const logger: Logger = Object.assign(
    (level: string, message: string, fields?: Record<string, unknown>) => {
      lines.push({ level, message, fields });
    },
    { child: () => logger },
  ) as Logger;
  return { logger, lines };
}

describe('followDomainEvents', () => {
  afterEach(() => vi.useRealTimers());

  it('runs virsh event on the runner URI, triggers on changes, logs malformed lines, and restarts with backoff', async () => {
    const { logger, lines } = recordingLogger();
    const stopping = new AbortController();
    const starts: { args: readonly string[]; at: number }[] = [];
    const changes: DomainEvent[] = [];
    let resumed = 0;
    const run = async (command: { file: string; args: readonly string[] }, options: RunOptions = {}) => {
      starts.push({ args: [command.file, ...command.args], at: Date.now() });
      if (starts.length === 1) {
        for (const line of [REAL[2] as string, BLOCK_JOB, 'not an event', '']) options.onStdoutLine?.(line);
        throw new ExecError('virsh event', 1, undefined, 'error: Disconnected from qemu:///system');
      }
      if (starts.length < 4) return { stdout: '', stderr: '' };
      // The fourth child runs until the runner stops.
      await new Promise((resolve) => options.signal?.addEventListener('abort', resolve));
      throw new Error('cancelled');
    };
    const done = followDomainEvents({
      uri: 'qemu:///system',
      onChange: (e) => changes.push(e),
      onResumed: () => resumed++,
      log: logger,
      signal: stopping.signal,
      backoff: { initialMs: 20, maxMs: 50, resetAfterMs: 60_000 },
      run: run as never,
    });
    await vi.waitUntil(() => starts.length === 4, { timeout: 2000 });
    stopping.abort();
    await done;

    expect(starts[0]?.args).toEqual([
      'virsh',
      '-c',
      'qemu:///system',
      'event',
      '--all',
      '--loop',
      '--timestamp',
    ]);
    expect(changes).toEqual([{ kind: 'lifecycle', domain: 'h11f-ev' }]);
    expect(resumed).toBe(3);
    const gaps = starts.slice(1).map((s, i) => s.at - (starts[i]?.at ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(18);
    expect(gaps[1]).toBeGreaterThanOrEqual(38);
    expect(gaps[2]).toBeGreaterThanOrEqual(48);
    expect(lines.filter((l) => l.message.includes('not understood'))).toEqual([
      {
        level: 'warn',
        message: 'libvirt event line not understood: ignored',
        fields: { line: 'not an event' },
      },
    ]);
    const restarts = lines.filter((l) => l.message.includes('starting it again'));
    expect(restarts).toHaveLength(3);
    expect(String(restarts[0]?.fields?.error)).toContain('Disconnected');
  });
});
