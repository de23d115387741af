/**
 * A second runner on a local-mode stack: another host of the same control plane, enrolled as an
 * operator enrolls one (`lifeboat host enroll NAME`, the one-time token in the runner's
 * environment), with its own state folder (identity, journal, work folders), its own queue (the
 * one its registration creates) and its own libvirt URI (a {@link SecondLibvirtd}).
 *
 * It runs `lifeboat runner` with the environment local mode gave the stack's own runner (the
 * emulators' endpoints, table names and LIFEBOAT_LOCAL_SESSION_URL, read from /proc), minus what
 * is that runner's own: its enrollment token, and any AWS key. It signs its AWS calls with its
 * own host's key, which it gets from local mode's session endpoint with its own host credential
 * (runner/session-credentials.ts), as host A's runner does. Its log lines (JSON, with its
 * hostName) are kept in memory and in `<home>/logs/runner-<name>.log`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Host } from '#core/model.ts';
import { PROJECT_ROOT } from '#local/functions.ts';
import { processEnv, type Stack, until } from '../e2e/harness.ts';

const BIN = join(PROJECT_ROOT, 'bin', 'lifeboat.js');

/** A second runner, started. */
export interface SecondRunner {
  name: string;
  /** Its host, once MONITORED. */
  host: Host;
  stateDir: string;
  pid(): number;
  /** Its log lines so far (JSON lines). */
  log(): string;
  /** SIGHUP: report the inventory now. */
  inventoryNow(): void;
  /** SIGTERM, waiting for it to exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
  /** Starts it again (same state folder, so the same identity and host). */
  restart(): Promise<void>;
}

/**
 * Variables of the stack's runner that are its own, not the environment every runner shares. AWS
 * keys too: local mode gives runners none, and one copied from A would make B sign as A.
 */
const OWN_VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'LIFEBOAT_ENROLL_TOKEN',
  'LIFEBOAT_ENROLL_TOKEN_FILE',
  'LIFEBOAT_RUNNER_NAME',
  'LIFEBOAT_RUNNER_STATE_DIR',
  'LIFEBOAT_LIBVIRT_URI',
];

/**
 * Enrolls host `name` and starts its runner on `libvirtUri`; resolves once the host is
 * MONITORED (registered, inventory reported).
 */
export async function startSecondRunner(
  stack: Stack,
  opts: { name: string; libvirtUri: string; env?: Record<string, string> },
): Promise<SecondRunner> {
  const { token } = await stack.json<{ token: string }>(['host', 'enroll', opts.name]);
  const shared = await processEnv(await stack.runnerPid());
  for (const name of OWN_VARIABLES) delete shared[name];
  // Beside the stack runner's folder, so removeHome removes it too.
  const stateDir = join(dirname(stack.runnerDir), `runner-${opts.name}`);
  await mkdir(join(stack.home, 'logs'), { recursive: true });
  const logFile = join(stack.home, 'logs', `runner-${opts.name}.log`);
  let text = '';
  let child: ChildProcess | undefined;
  let enrollToken: string | undefined = token;

  const start = () => {
    const env: Record<string, string> = { ...shared, ...opts.env, LIFEBOAT_HOME: stack.home };
    // The token serves one registration: later starts use the identity in the state folder.
    if (enrollToken) env.LIFEBOAT_ENROLL_TOKEN = enrollToken;
    enrollToken = undefined;
    const args = ['runner', '--home', stack.home, '--state-dir', stateDir, '--name', opts.name];
    child = spawn(process.execPath, [BIN, ...args, '--libvirt-uri', opts.libvirtUri], {
      cwd: PROJECT_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (chunk: Buffer) => {
      text += chunk.toString();
      void writeFile(logFile, text).catch(() => {});
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  };
  const stop = async (graceMs = 10_000) => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const monitored = () =>
    until(`host ${opts.name} MONITORED`, async () => {
      if (child && child.exitCode !== null)
        throw new Error(`runner ${opts.name} exited: ${text.slice(-2000)}`);
      const { items } = await stack.api<{ items: Host[] }>('GET', '/hosts');
      return items.find((h) => h.name === opts.name && h.state === 'MONITORED');
    });

  start();
  let host: Host;
  try {
    host = await monitored();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    name: opts.name,
    host,
    stateDir,
    pid: () => child?.pid ?? -1,
    log: () => text,
    inventoryNow: () => child?.kill('SIGHUP'),
    stop,
    async restart() {
      await stop();
      start();
      await monitored();
    },
  };
}
