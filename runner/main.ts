/**
 * Entry of the runner daemon: `node --import tsx runner/main.ts [flags]` (systemd runs it the
 * same way; `lifeboat runner` is meant to call {@link runRunner}). Stops cleanly on SIGTERM or
 * SIGINT: no new tasks, running ones finish (up to the grace period), exit 0. SIGHUP reports
 * the libvirt inventory at once. Exit 2 on a bad
 * setting, 1 when the start fails.
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadRunnerConfig, type RunnerFlags } from './config.ts';
import { startDaemon } from './daemon.ts';
import { scratchRoot } from './tasks/context.ts';

export const RUNNER_USAGE = `usage: lifeboat runner [--endpoint URL] [--enroll-token-file PATH] [--home DIR] [--name HOST]
       [--state-dir DIR] [--libvirt-uri URI] [--poll-wait SECONDS] [--max-tasks N]
       [--restore-roots DIR[:DIR...]] [--restore-pools POOL[,POOL...]]
A runner acts as its host, never with an API token: its first start registers with a one-time
enrollment token (\`lifeboat host enroll NAME\`, given in LIFEBOAT_ENROLL_TOKEN or a file) and
keeps the host credential it gets in <state-dir>/identity.json (0600).
In AWS, LIFEBOAT_API_AUTH=iam signs every API call with the host's IAM Roles Anywhere session
(the default AWS credential chain) as host LIFEBOAT_HOST_ID, its certificate's CN: no token at all;
an admin creates the host first (POST /hosts), the runner stores its public key on it.
env: LIFEBOAT_ENDPOINT, LIFEBOAT_ENROLL_TOKEN, LIFEBOAT_ENROLL_TOKEN_FILE, LIFEBOAT_HOME,
     LIFEBOAT_RUNNER_NAME, LIFEBOAT_RUNNER_STATE_DIR, LIFEBOAT_API_AUTH (bearer|iam), LIFEBOAT_HOST_ID,
     LIFEBOAT_LIBVIRT_URI, LIFEBOAT_RUNNER_POLL_WAIT, LIFEBOAT_RUNNER_MAX_TASKS,
     LIFEBOAT_RUNNER_INVENTORY_SECONDS, LIFEBOAT_RESTORE_ROOTS,
     AWS_REGION (and AWS credentials, or in local mode AWS_ENDPOINT_URL_* and
     LIFEBOAT_LOCAL_SESSION_URL: the host's key for its credential), TABLE_PROGRESS
signals: SIGTERM/SIGINT stop (running tasks finish first), SIGHUP reports the inventory now`;

/** Parses `argv` (without node and script), runs until SIGTERM/SIGINT; answers the exit code. */
export async function runRunner(argv: readonly string[]): Promise<number> {
  let flags: RunnerFlags;
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        endpoint: { type: 'string' },
        // Only to refuse it with a clear message: a runner never takes an API token.
        token: { type: 'string' },
        'enroll-token-file': { type: 'string' },
        home: { type: 'string' },
        name: { type: 'string' },
        'state-dir': { type: 'string' },
        'libvirt-uri': { type: 'string' },
        'poll-wait': { type: 'string' },
        'max-tasks': { type: 'string' },
        'restore-roots': { type: 'string' },
        'restore-pools': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(`${RUNNER_USAGE}\n`);
      return 0;
    }
    if (values.token !== undefined) {
      throw new Error(
        'a runner takes no API token: it registers with a one-time enrollment token ' +
          '(lifeboat host enroll NAME) in LIFEBOAT_ENROLL_TOKEN or --enroll-token-file PATH',
      );
    }
    flags = {
      endpoint: values.endpoint,
      enrollTokenFile: values['enroll-token-file'],
      home: values.home,
      name: values.name,
      stateDir: values['state-dir'],
      libvirtUri: values['libvirt-uri'],
      pollWait: values['poll-wait'],
      maxTasks: values['max-tasks'],
      restoreRoots: values['restore-roots'],
      restorePools: values['restore-pools'],
    };
  } catch (error) {
    process.stderr.write(`lifeboat runner: ${(error as Error).message} (see lifeboat runner --help)\n`);
    return 2;
  }
  let config: ReturnType<typeof loadRunnerConfig>;
  try {
    config = loadRunnerConfig(flags);
    // Held in the config from now on: the tools the runner starts do not inherit it.
    delete process.env.LIFEBOAT_ENROLL_TOKEN;
    // The drivers' temporary files (restic's password, hash pipes) go to the runner's own
    // folder, which the daemon empties at start (os.tmpdir() reads TMPDIR at each call).
    process.env.TMPDIR = scratchRoot(config.stateDir);
  } catch (error) {
    process.stderr.write(`lifeboat runner: ${(error as Error).message}\n`);
    return 2;
  }
  const starting = new AbortController();
  let stop: (() => Promise<void>) | undefined;
  let inventoryNow: (() => Promise<void>) | undefined;
  // SIGHUP: report the inventory now (local mode's demo defines a domain and wants it seen).
  // Handled from the very start, since Node's default for SIGHUP is to exit.
  process.on('SIGHUP', () => void inventoryNow?.());
  const finished = new Promise<void>((resolve) => {
    const onSignal = () => {
      starting.abort();
      void (stop ? stop() : Promise.resolve()).then(resolve);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  try {
    const daemon = await startDaemon(config, {}, starting.signal);
    stop = daemon.stop;
    inventoryNow = daemon.inventoryNow;
  } catch (error) {
    if (starting.signal.aborted) return 0;
    process.stderr.write(`lifeboat runner: ${(error as Error).message}\n`);
    return 1;
  }
  if (starting.signal.aborted) await stop();
  await finished;
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exit(await runRunner(process.argv.slice(2)));
}
