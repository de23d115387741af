/**
 * A service that cannot bind to a chosen address (DynamoDB Local listens on all of them) run in
 * a network namespace of its own, reached through a Unix socket: `unshare` starts
 * local/netns-entry.ts inside new network and pid namespaces, which starts the service there.
 * Spawned with argument arrays only; needs root (or unprivileged user namespaces).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** What the entry runs and forwards; passed to it as its single argument, JSON. */
export const NetnsSpec = z
  .object({
    command: z.string().min(1),
    args: z.array(z.string()),
    cwd: z.string().optional(),
    /** Unix socket the entry listens on (created 0600) and forwards to `port`. */
    socket: z.string().min(1),
    /** TCP port the service listens on inside the namespace. */
    port: z.number().int().min(1).max(65535),
  })
  .strict();
export type NetnsSpec = z.infer<typeof NetnsSpec>;

/** A running namespaced service. */
export interface NetnsProcess {
  /** Pid of `unshare` (killing it kills the entry, whose death kills the service). */
  pid: number;
  /** Resolves once `unshare` has exited. */
  exited: Promise<void>;
  /** How it ended (exit code, signal or spawn error), once it has. */
  exitInfo(): string | undefined;
  /** Close the entry's stdin (it stops the service), SIGKILL the group after `graceMs`; resolves once gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Longest Unix socket path Linux takes (sun_path is 108 bytes with its terminating NUL). */
const MAX_SOCKET_PATH = 107;

/** Start `spec` in its own network namespace; `log` gets each line the service writes. */
export function startInNetns(spec: NetnsSpec, log: (line: string) => void = () => {}): NetnsProcess {
  if (Buffer.byteLength(spec.socket) > MAX_SOCKET_PATH) {
    throw new Error(`socket path ${spec.socket} is too long for a Unix socket: choose a shorter home folder`);
  }
  const entry = fileURLToPath(new URL('./netns-entry.ts', import.meta.url));
  const unshareArgs = [
    // Without root, a user namespace of its own grants the right to make the others.
    ...(process.getuid?.() === 0 ? [] : ['--map-root-user']),
    '--net',
    '--pid',
    '--fork',
    '--kill-child',
    '--',
    process.execPath,
    '--import',
    import.meta.resolve('tsx'),
    entry,
    JSON.stringify(NetnsSpec.parse(spec)),
  ];
  // stdin is the entry's lifeline: it ends when this process ends, however it ends. Its own
  // process group, so a last SIGKILL reaches unshare, the entry and the service together.
  const child: ChildProcess = spawn('unshare', unshareArgs, {
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let info: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      info ??= `exit code ${code}, signal ${signal}`;
      resolve();
    });
    child.once('error', (err) => {
      info ??= err.message;
      resolve();
    });
  });
  // The pipe to a dead entry must not crash this process.
  child.stdin?.on('error', () => {});
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.trim()) log(line);
    });
  }
  const gone = () => info !== undefined || child.exitCode !== null || child.signalCode !== null;
  return {
    pid: child.pid ?? -1,
    exited,
    exitInfo: () => info,
    stop: async (graceMs = 10_000) => {
      if (gone()) return;
      child.stdin?.end();
      const timer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
