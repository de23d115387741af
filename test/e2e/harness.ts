/**
 * End-to-end harness: local mode (`localUp`) in a temporary home on free ports, with its real
 * runner for this host, driven through the `lifeboat` command as an operator would. The runner
 * is a child of the supervisor, which gets this process's environment: the harness puts the
 * test sshd's client config (`LIFEBOAT_SSH_CONFIG`) and a short inventory interval there before
 * starting, and restores the environment when it stops.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import type { Execution, Host, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { runnerStateDir } from '#local/config.ts';
import { localDown } from '#local/down.ts';
import { PROJECT_ROOT } from '#local/functions.ts';
import { isAlive } from '#local/pids.ts';
import { freeStackPorts } from '#local/ports.ts';
import { localUp } from '#local/up.ts';
import { cliEntry } from '../helpers/cli-bundle.ts';
import type { Sshd } from '../helpers/sshd.ts';

/** What a `lifeboat` invocation gave back. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running local mode. */
export interface Stack {
  /** What `lifeboat local up` printed, when started through the CLI. */
  up?: CliResult;
  home: string;
  endpoint: string;
  token: string;
  /** The runner's state folder (journal, work folders): `<home>/runner`. */
  runnerDir: string;
  /**
   * `lifeboat ...args` with LIFEBOAT_HOME set (the CLI finds endpoint and token itself): the
   * run's CLI bundle, or bin/lifeboat.js (see test/helpers/cli-bundle.ts).
   */
  cli(args: readonly string[], timeoutMs?: number): Promise<CliResult>;
  /** `cli(args)` with `--json`, parsed; throws with stderr when the exit code is not 0. */
  json<T>(args: readonly string[], timeoutMs?: number): Promise<T>;
  /** Direct API call, for polling (cheaper than starting the CLI). */
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** The host of the local runner once its inventory made it MONITORED. */
  host(): Promise<Host>;
  /** Waits until the runner's inventory reports `domain` (in `state`, if given). */
  vm(domain: string, state?: Vm['state']): Promise<Vm>;
  /** Pid of the runner now (the supervisor's child, as pids.json names it). */
  runnerPid(): Promise<number>;
  /**
   * Waits until the supervisor started the runner again after `killed` died (it does so
   * within seconds, local/keeper.ts); answers the new pid.
   */
  runnerRestarted(killed: number, timeoutMs?: number): Promise<number>;
  /** Every log line local mode wrote (supervisor, runner). */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Polls `probe` until it answers something other than undefined. Every 200 ms by default: a
 * probe is one API call or one file read, and the e2e files wait this way some hundreds of times
 * (an inventory change, an execution's end), each about 150 ms sooner than at 500 ms.
 */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Runs `lifeboat` with `env` on top of this process's environment. */
export function runCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
  timeoutMs = 300_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry(args), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** Environment variables the harness sets for the supervisor (and so the runner). */
const RUNNER_ENV = {
  // The runner reports libvirt's domains at start and then every few seconds (default 60).
  LIFEBOAT_RUNNER_INVENTORY_SECONDS: '2',
  // Short long-polls: the runner stops quickly at `local down`.
  LIFEBOAT_RUNNER_POLL_WAIT: '2',
} as const;

/**
 * Starts local mode in a fresh home. `sshd` gives the runner the test sshd's client config;
 * `config` is merged into `<home>/config.json` (ports are free ones, the demo is off unless asked).
 */
export async function startStack(
  opts: {
    sshd?: Sshd;
    config?: Record<string, unknown>;
    env?: Record<string, string>;
    /** Start with `lifeboat local up --home HOME` (its output in {@link Stack.up}) instead of localUp. */
    viaCli?: boolean;
  } = {},
): Promise<Stack> {
  const home = await mkdtemp(join(tmpdir(), 'lifeboat-e2e-'));
  const ports = await freeStackPorts();
  await writeFile(
    join(home, 'config.json'),
    // A task refused by a transient error (DatastoreLocked: two maintenance tasks on one restic
    // repository) is retried after 2 s instead of 30.
    JSON.stringify({ ports, heartbeatSeconds: 20, hostRetryIntervalSeconds: 2, demo: false, ...opts.config }),
  );
  const added: Record<string, string> = {
    ...RUNNER_ENV,
    ...(opts.sshd ? { LIFEBOAT_SSH_CONFIG: opts.sshd.configPath } : {}),
    ...opts.env,
  };
  const saved = Object.fromEntries(Object.keys(added).map((k) => [k, process.env[k]]));
  // localUp spawns the supervisor with process.env, and the supervisor its runner the same way.
  Object.assign(process.env, added);
  let endpoint: string;
  let token: string;
  let up: CliResult | undefined;
  try {
    if (opts.viaCli) {
      up = await runCli(['local', 'up', '--home', home], { LIFEBOAT_HOME: undefined });
      if (up.code !== 0) throw new Error(`lifeboat local up exited ${up.code}: ${up.stderr}`);
      ({ endpoint, token } = JSON.parse(await readFile(join(home, 'endpoint.json'), 'utf8')));
    } else {
      ({ endpoint, token } = await localUp({ home }));
    }
  } catch (error) {
    // A start that failed leaves nothing behind (a partly started supervisor is stopped).
    await localDown({ home }).catch(() => {});
    await rm(home, { recursive: true, force: true });
    await rm(dirname(runnerStateDir(home)), { recursive: true, force: true });
    throw error;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const runnerDir = runnerStateDir(home);
  const cliEnv = {
    LIFEBOAT_HOME: home,
    LIFEBOAT_ENDPOINT: undefined,
    LIFEBOAT_TOKEN: undefined,
    // `--wait` polls every 200 ms, not 1 s: each wait then ends ~0.4 s sooner after the
    // execution does (about 40 waits in incremental.test.ts alone).
    LIFEBOAT_POLL_INTERVAL_MS: '200',
  };

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${endpoint}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  const cli = (args: readonly string[], timeoutMs?: number) => runCli(args, cliEnv, timeoutMs);
  const stack: Stack = {
    up,
    home,
    endpoint,
    token,
    runnerDir,
    cli,
    async json<T>(args: readonly string[], timeoutMs?: number) {
      const out = await cli([...args, '--json'], timeoutMs);
      if (out.code !== 0)
        throw new Error(`lifeboat ${args.join(' ')} exited ${out.code}: ${out.stderr.trim()}`);
      return JSON.parse(out.stdout) as T;
    },
    api,
    host: () =>
      until('the runner host to be MONITORED', async () => {
        const { items } = await api<{ items: Host[] }>('GET', '/hosts');
        return items.find((h) => h.state === 'MONITORED');
      }),
    vm: (domain, state) =>
      until(`VM ${domain} in the inventory${state ? ` (${state})` : ''}`, async () => {
        const { items } = await api<{ items: Vm[] }>('GET', '/vms');
        return items.find((v) => v.domain === domain && (state === undefined || v.state === state));
      }),
    async runnerPid() {
      const pids = JSON.parse(await readFile(join(home, 'pids.json'), 'utf8'));
      return pids.children.runner as number;
    },
    runnerRestarted: (killed, timeoutMs = 30_000) =>
      until(
        `the supervisor to start the runner again (pid ${killed} killed)`,
        async () => {
          const pid = await stack.runnerPid();
          return pid !== killed && isAlive(pid) ? pid : undefined;
        },
        timeoutMs,
        100,
      ),
    async logs() {
      const dir = join(home, 'logs');
      const files = await readdir(dir).catch(() => [] as string[]);
      const texts = await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8').catch(() => '')));
      return texts.join('\n');
    },
    async stop() {
      await localDown({ home });
    },
  };
  return stack;
}

/** A call local mode's IAM enforcement refused (its `access denied` log line). */
export interface DeniedCall {
  principal: string;
  action: string;
  resource: string;
}

/** Every call local mode refused under the template's IAM policies, from the stack's logs. */
export async function deniedCalls(stack: Stack): Promise<DeniedCall[]> {
  const denied: DeniedCall[] = [];
  for (const line of (await stack.logs()).split('\n')) {
    if (!line.includes('access denied')) continue;
    try {
      const entry = JSON.parse(line) as Partial<DeniedCall> & { msg?: string };
      if (entry.msg === 'access denied')
        denied.push({
          principal: `${entry.principal}`,
          action: `${entry.action}`,
          resource: `${entry.resource}`,
        });
    } catch {
      // not a log entry of local mode
    }
  }
  return denied;
}

/**
 * Removes a stack's home (after `stop`), then fails when local mode refused a call the test did
 * not make on purpose (`expected`): the deployed policies would refuse it too, and a best-effort
 * call (a wake-up, a progress write) hides its refusal from every other assertion.
 */
export async function removeHome(
  stack: Stack | undefined,
  opts: { expected?: (call: DeniedCall) => boolean } = {},
): Promise<void> {
  if (!stack) return;
  const denied = (await deniedCalls(stack)).filter((call) => !opts.expected?.(call));
  await rm(stack.home, { recursive: true, force: true });
  // The runner's state folder lives outside the home (see runnerStateDir).
  await rm(dirname(stack.runnerDir), { recursive: true, force: true });
  if (denied.length) {
    const list = denied.map((c) => `${c.principal}: ${c.action} on ${c.resource}`).join('; ');
    throw new Error(`local mode's IAM policies refused ${denied.length} call(s): ${list}`);
  }
}

/** The environment of a running process (`/proc/PID/environ`). */
export async function processEnv(pid: number): Promise<Record<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8');
  return Object.fromEntries(
    raw
      .split('\0')
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
  );
}

/** `lifeboat vm backup VMID -d DSID --wait --json`: the finished execution, whatever its state. */
export async function backup(
  stack: Stack,
  vmId: number,
  datastoreId: number,
): Promise<{ code: number; execution?: Execution; stdout: string; stderr: string }> {
  const out = await stack.cli(['vm', 'backup', String(vmId), '-d', String(datastoreId), '--wait', '--json']);
  let execution: Execution | undefined;
  try {
    execution = JSON.parse(out.stdout) as Execution;
  } catch {
    execution = undefined;
  }
  return { code: out.code, execution, stdout: out.stdout, stderr: out.stderr };
}

/**
 * `lifeboat image restore IMAGEID [--increment N] --to DIR --name NAME --wait`, which must
 * succeed: the finished execution.
 */
export async function restoreToFolder(
  stack: Stack,
  imageId: number,
  to: { dir: string; name: string; increment?: number },
): Promise<Execution> {
  const point = to.increment === undefined ? [] : ['--increment', String(to.increment)];
  const execution = await stack.json<Execution>([
    'image',
    'restore',
    String(imageId),
    ...point,
    '--to',
    to.dir,
    '--name',
    to.name,
    '--wait',
  ]);
  expect(execution).toMatchObject({ kind: 'restore', state: 'SUCCEEDED' });
  return execution;
}

/** The image an execution wrote. */
export function imageOf(stack: Stack, execution: Execution): Promise<Image> {
  return stack.json<Image>(['image', 'show', String(execution.imageId)]);
}

/** sha256 of a whole disk image as the guest sees it (`qemu-img convert -O raw` to stdout-free temp). */
export async function guestSha256(path: string, format: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-sha-'));
  try {
    const raw = join(dir, 'disk.raw');
    await run({ file: 'qemu-img', args: ['convert', '-f', format, '-O', 'raw', path, raw] });
    return (await run({ file: 'sha256sum', args: [raw] })).stdout.split(' ')[0] as string;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Overlay files (`overlay-*.qcow2`) left anywhere under the runner's work folders. */
export async function leftoverOverlays(stack: Stack): Promise<string[]> {
  const files = await readdir(join(stack.runnerDir, 'work'), { recursive: true }).catch(() => [] as string[]);
  return files.filter((f) => /overlay-[^/]*\.qcow2$/.test(f));
}
