/**
 * `lifeboat local up`: start the supervisor detached, wait until the API answers, and hand back
 * the endpoint and the admin token (kept in `<home>/endpoint.json`, mode 0600).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newToken, tokenHash } from './admin.ts';
import { type HomePaths, homePaths, loadConfig, resolveHome } from './config.ts';
import { PROJECT_ROOT } from './functions.ts';
import { isAlive, readPids } from './pids.ts';

/** What `localUp` answers. */
export interface LocalUpResult {
  endpoint: string;
  token: string;
  /** True when local mode was already running (nothing was started). */
  alreadyRunning: boolean;
}

const START_TIMEOUT_MS = 60_000;

/**
 * Start local mode in `home` (default LIFEBOAT_HOME or ~/.lifeboat) with the API on `port`
 * (default from `<home>/config.json`, else 7780). Resolves once `/health` answers; rejects with
 * the supervisor log's tail when it does not within 60 s or the supervisor exits.
 */
export async function localUp(opts: { home?: string; port?: number } = {}): Promise<LocalUpResult> {
  const home = resolveHome(opts.home);
  const paths = homePaths(home);
  await mkdir(home, { recursive: true, mode: 0o700 });
  await mkdir(paths.logs, { recursive: true, mode: 0o700 });
  const saved = await readEndpointFile(paths);

  const running = await readPids(paths.pids);
  if (running && isAlive(running.supervisor)) {
    // Already running (or starting): wait for it rather than start a second one.
    await waitForHealth(running.endpoint, home, () => isAlive(running.supervisor), paths);
    if (!saved)
      throw new Error(
        `local mode runs in ${home} but ${paths.endpoint} is missing: run \`lifeboat local down\` first`,
      );
    return { endpoint: running.endpoint, token: saved.token, alreadyRunning: true };
  }

  const startedAt = Date.now();
  const config = await loadConfig(home, opts.port);
  const endpoint = `http://127.0.0.1:${config.ports.api}`;
  if (saved && (await healthyHome(endpoint)) === home) {
    // Running although pids.json says otherwise (removed by hand): do not start a second one.
    return { endpoint, token: saved.token, alreadyRunning: true };
  }
  const token = saved?.token ?? newToken();
  const child = spawnSupervisor(home, config.ports.api, tokenHash(token), paths);
  let exit: string | undefined;
  child.once('exit', (code, signal) => {
    exit = `exit code ${code}${signal ? `, signal ${signal}` : ''}`;
  });
  try {
    await waitForHealth(endpoint, home, () => exit === undefined, paths);
  } catch (err) {
    if (exit === undefined && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    throw err;
  }
  await writeEndpointFile(paths, { endpoint, token });
  if (config.runner && config.demo !== false) {
    await demo({ endpoint, token, home, mode: config.demo, startedAt, pids: paths.pids });
  }
  return { endpoint, token, alreadyRunning: false };
}

/**
 * The newcomer's demo (local/demo.ts), reported on stderr. Best effort: a demo that cannot be
 * made (no libvirt, a slow runner) is one warning line, never a failed start.
 */
async function demo(opts: {
  endpoint: string;
  token: string;
  home: string;
  mode: true | 'always';
  startedAt: number;
  pids: string;
}): Promise<void> {
  const { describeDemo, offerDemo } = await import('./demo.ts');
  const wakeRunner = () => {
    void readPids(opts.pids).then((pids) => {
      const runner = pids?.children.runner;
      if (runner && isAlive(runner)) process.kill(runner, 'SIGHUP');
    });
  };
  try {
    const made = await offerDemo({ ...opts, wakeRunner });
    if (made) process.stderr.write(`${describeDemo(made, opts.home).join('\n')}\n`);
  } catch (error) {
    process.stderr.write(`lifeboat: no demo VM: ${(error as Error).message}\n`);
  }
}

function nodeBinary(): string {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return process.execPath;
  // Node 22 from the npm package (fauxqs needs node:sqlite, the interpreter Promise.withResolvers).
  const local = join(PROJECT_ROOT, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(local))
    throw new Error(`local mode needs Node.js 22 or newer (this is ${process.version})`);
  return local;
}

function spawnSupervisor(home: string, port: number, hash: string, paths: HomePaths) {
  const logFd = openSync(paths.supervisorLog, 'a', 0o600);
  try {
    const child = spawn(
      nodeBinary(),
      [
        '--disable-warning=ExperimentalWarning',
        '--import',
        import.meta.resolve('tsx'),
        join(PROJECT_ROOT, 'local', 'supervisor.ts'),
        '--home',
        home,
        '--port',
        String(port),
      ],
      {
        cwd: PROJECT_ROOT,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, LIFEBOAT_HOME: home, LIFEBOAT_ADMIN_TOKEN_HASH: hash },
      },
    );
    child.unref();
    return child;
  } finally {
    closeSync(logFd);
  }
}

async function waitForHealth(
  endpoint: string,
  home: string,
  stillStarting: () => boolean,
  paths: HomePaths,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!stillStarting()) {
      throw new Error(await startFailure('local mode failed to start', paths));
    }
    const answering = await healthyHome(endpoint);
    if (answering === home) return;
    if (answering !== undefined)
      throw new Error(`${endpoint} is served by local mode of another home (${answering})`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    await startFailure(
      `local mode did not answer on ${endpoint}/health within ${START_TIMEOUT_MS / 1000} s`,
      paths,
    ),
  );
}

/** The home of the local mode answering on `endpoint`, if one does. */
async function healthyHome(endpoint: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { status?: string; home?: string };
    return body.status === 'ok' ? body.home : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error of a failed start: first line the headline with the supervisor's last error (the
 * CLI shows one line), then the end of the supervisor log.
 */
async function startFailure(headline: string, paths: HomePaths, lines = 20): Promise<string> {
  let log: string[] = [];
  try {
    log = (await readFile(paths.supervisorLog, 'utf8')).trimEnd().split('\n');
  } catch {
    // no log yet
  }
  let reason: string | undefined;
  for (const line of log.toReversed()) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; error?: string };
      if (entry.level === 'error') {
        reason = entry.error ?? entry.msg;
        break;
      }
    } catch {
      // not a JSON line (a child's output)
    }
  }
  return [
    `${headline}${reason ? `: ${reason}` : ''} (log: ${paths.supervisorLog})`,
    ...log.slice(-lines),
  ].join('\n');
}

async function readEndpointFile(paths: HomePaths): Promise<{ endpoint: string; token: string } | undefined> {
  try {
    const parsed = JSON.parse(await readFile(paths.endpoint, 'utf8')) as {
      endpoint?: unknown;
      token?: unknown;
    };
    if (typeof parsed.token === 'string' && typeof parsed.endpoint === 'string') {
      return { endpoint: parsed.endpoint, token: parsed.token };
    }
  } catch {
    // absent or unreadable: a new token is made
  }
  return undefined;
}

async function writeEndpointFile(
  paths: HomePaths,
  value: { endpoint: string; token: string },
): Promise<void> {
  await writeFile(paths.endpoint, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await chmod(paths.endpoint, 0o600);
}
