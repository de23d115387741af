/**
 * The long-running process of local mode, started detached by `localUp`:
 * `node --import tsx local/supervisor.ts --home DIR [--port N]`. Runs the control plane, keeps
 * `<home>/pids.json` current, logs JSON lines to stdout (the supervisor log), and stops
 * everything on SIGTERM or SIGINT. User admin's token hash comes in LIFEBOAT_ADMIN_TOKEN_HASH.
 */
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { enrollLocalRunner } from './admin.ts';
import { homePaths, type LocalConfig, loadConfig, resolveHome } from './config.ts';
import { type ChildSpec, startControlPlane } from './control-plane.ts';
import { runnerEnvironment } from './iam/sessions.ts';
import { type KeptChild, keepRunning, spawnLogged } from './keeper.ts';
import { ensureLibvirt } from './libvirtd.ts';
import { isAlive, type PidsFile, readPids, removePids, writePids } from './pids.ts';

/**
 * Processes the supervisor starts once the control plane is up: the runner for this host, which
 * gets the Lambda environment (emulator endpoints, table names, secret store) on top of its own and
 * registers itself through the API once `endpoint.json` exists (with the enrollment token
 * {@link enrollRunner} adds to its environment: never the admin's token, never an argument).
 * The supervisor keeps it running (local/keeper.ts), as systemd's `Restart=` does on a host.
 */
function extraChildren(home: string, config: LocalConfig): ChildSpec[] {
  if (!config.runner) return [];
  const root = fileURLToPath(new URL('..', import.meta.url));
  return [
    {
      name: RUNNER,
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        join(root, 'runner/main.ts'),
        '--home',
        home,
        '--state-dir',
        homePaths(home).runner,
      ],
      env: { LIFEBOAT_HOME: home },
    },
  ];
}

const RUNNER = 'runner';

/**
 * Enrolls this host's runner when it has no identity yet (or one this home's users table does
 * not know): a one-time token in the runner child's environment. The name is the one the runner
 * registers as (runner/config.ts: LIFEBOAT_RUNNER_NAME, else the host name).
 */
async function enrollRunner(ddb: DynamoDBClient, children: ChildSpec[], stateDir: string): Promise<void> {
  const runner = children.find((c) => c.name === RUNNER);
  if (!runner) return;
  const hostName = process.env.LIFEBOAT_RUNNER_NAME || hostname();
  // No AWS key here: once registered, the runner gets its host's key from the session endpoint
  // with its host credential (local/iam/sessions.ts), as its Roles Anywhere certificate (CN =
  // host id) gets it in AWS; control-plane.ts gives it no other.
  const token = await enrollLocalRunner(ddb, { stateDir, hostName });
  if (!token) return;
  runner.env = { ...runner.env, LIFEBOAT_ENROLL_TOKEN: token };
  log({ level: 'info', msg: 'runner enrolled', hostName });
}

function log(entry: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { home: { type: 'string' }, port: { type: 'string' } } });
  const home = resolveHome(values.home);
  const paths = homePaths(home);
  const port = values.port ? Number(values.port) : undefined;
  const config = await loadConfig(home, port);
  for (const dir of [paths.logs, paths.dynamodb, paths.sqs, paths.stepfunctions, paths.secrets]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  const adminTokenHash = process.env.LIFEBOAT_ADMIN_TOKEN_HASH;
  delete process.env.LIFEBOAT_ADMIN_TOKEN_HASH;

  const other = await readPids(paths.pids);
  if (other && other.supervisor !== process.pid && isAlive(other.supervisor)) {
    log({ level: 'error', msg: `local mode already runs in ${home} (supervisor pid ${other.supervisor})` });
    process.exit(1);
  }
  const pids: PidsFile = {
    supervisor: process.pid,
    children: {},
    home,
    endpoint: `http://127.0.0.1:${config.ports.api}`,
    startedAt: new Date().toISOString(),
  };
  // Written before anything starts, so `down` can stop a supervisor still starting up.
  await writePids(paths.pids, pids);
  log({ level: 'info', msg: 'starting', home, ports: config.ports });

  let stopping: Promise<void> | undefined;
  let stopControlPlane: (() => Promise<void>) | undefined;
  let runner: KeptChild | undefined;
  const shutdown = (signal: string) => {
    stopping ??= (async () => {
      log({ level: 'info', msg: `stopping (${signal})` });
      // The runner first (not restarted): its running tasks still report to the control plane.
      await runner?.stop();
      await stopControlPlane?.();
      await removePids(paths.pids, process.pid);
      log({ level: 'info', msg: 'stopped' });
      process.exit(0);
    })();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // A crash must not leave DynamoDB Local (a separate JVM) running without its supervisor.
  process.on('uncaughtException', (err) => {
    log({ level: 'error', msg: 'uncaught exception', error: err.message, stack: err.stack });
    shutdown('uncaughtException');
  });

  try {
    // The runner drives libvirt: with no init system here, local mode starts it.
    if (config.runner) await ensureLibvirt();
    const children = extraChildren(home, config);
    const plane = await startControlPlane({
      paths,
      config,
      adminTokenHash,
      onTables: (ddb) => enrollRunner(ddb, children, paths.runner),
      log,
      onChild: (name, pid) => {
        pids.children[name] = pid;
        writePids(paths.pids, pids).catch((err) =>
          log({ level: 'warn', msg: 'pids.json', error: String(err) }),
        );
      },
    });
    stopControlPlane = plane.stop;
    pids.children = { ...plane.children };
    await writePids(paths.pids, pids);
    if (stopping) {
      await plane.stop();
      return;
    }
    const spec = children.find((c) => c.name === RUNNER);
    if (spec) {
      // The control plane's environment (applied to this process) without its AWS key, and
      // the session endpoint where a runner gets its host's key, as control-plane.ts gives its
      // own children.
      const env = runnerEnvironment({ ...process.env, ...spec.env }, plane.sessionEndpoint);
      runner = keepRunning({
        name: RUNNER,
        start: () => spawnLogged(spec, env, log),
        onStart: (pid) => {
          pids.children[RUNNER] = pid;
          writePids(paths.pids, pids).catch((err) =>
            log({ level: 'warn', msg: 'pids.json', error: String(err) }),
          );
        },
        log,
      });
    }
  } catch (err) {
    log({ level: 'error', msg: 'start failed', error: (err as Error).message, stack: (err as Error).stack });
    await removePids(paths.pids, process.pid);
    process.exit(1);
  }
}

process.on('unhandledRejection', (err) => {
  log({ level: 'error', msg: 'unhandled rejection', error: String(err) });
});

await main();
