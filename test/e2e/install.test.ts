/**
 * The runner's install path, as a host gets it: `runner/install.sh --root` into a scratch root,
 * its systemd unit checked by `systemd-analyze verify`, then a runner started from the installed
 * layout with the unit's own settings (EnvironmentFile, Environment, User, UMask, StateDirectory,
 * WorkingDirectory, ExecStart, read from the installed unit, not repeated here) as systemd would
 * start it. It enrolls with a token an admin made through the API of a local stack whose own
 * runner is off, backs up a running VM twice under `UMask=0077` (a full backup, QEMU writing to an
 * overlay in the runner's work folder; a chain start, QEMU serving an NBD socket and writing scratch
 * files there) and restores it under the runner's restore root, where QEMU (libvirt-qemu) opens it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Host } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { loadConfig } from '#local/config.ts';
import { localTableName } from '#local/dynamodb.ts';
import { PROJECT_ROOT } from '#local/functions.ts';
import { createTestVm, removeTestVm } from '../helpers/libvirt.ts';
import { backup, imageOf, removeHome, type Stack, startStack, until } from './harness.ts';

const VM = 'lb-e2e-install';
const HOST_NAME = 'lb-install-host';
/** systemd's PATH for system services. */
const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The `[Service]` settings of a unit file: each key with all its values, in order. */
function serviceSettings(unit: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of unit.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    if (section !== 'Service') continue;
    const at = line.indexOf('=');
    const key = line.slice(0, at).trim();
    settings.set(key, [...(settings.get(key) ?? []), line.slice(at + 1).trim()]);
  }
  return settings;
}

/** systemd's word splitting (double and single quotes), enough for ExecStart and Environment. */
function words(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? (m[3] as string));
}

/** `KEY=VALUE` lines of an EnvironmentFile (comments and blank lines skipped, quotes removed). */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const at = line.indexOf('=');
    env[line.slice(0, at).trim()] = line
      .slice(at + 1)
      .trim()
      .replace(/^(["'])(.*)\1$/, '$2');
  }
  return env;
}

/** The only value of `key` (the test fails when the unit lacks it). */
function one(settings: Map<string, string[]>, key: string): string {
  const values = settings.get(key) ?? [];
  expect(values, `unit setting ${key}`).toHaveLength(1);
  return values[0] as string;
}

async function idOf(user: string, flag: '-u' | '-g'): Promise<number> {
  return Number((await run({ file: 'id', args: [flag, user] })).stdout.trim());
}

/** Every folder from `/` down to the folder of `path`, with its mode. */
async function folderModes(path: string): Promise<Record<string, string>> {
  const modes: Record<string, string> = {};
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    modes[dir] = ((await stat(dir)).mode & 0o777).toString(8);
    if (dir === '/') break;
  }
  return modes;
}

let scratch: string;
let stack: Stack;
let runner: ChildProcess | undefined;
let runnerLog = '';
let runnerExit: Promise<number | null>;
let installOut: string;
let unitPath: string;
let settings: Map<string, string[]>;

/** A path of the installed layout, inside the scratch root. */
const inScratch = (path: string) => join(scratch, path);
/** An absolute setting of the unit moves with the layout; the project checkout stays where it is. */
const relocate = (value: string) =>
  value.startsWith('/') && !value.startsWith(`${PROJECT_ROOT}/`) && value !== PROJECT_ROOT
    ? inScratch(value)
    : value;

beforeAll(async () => {
  // QEMU (libvirt-qemu) must pass through the scratch root as through `/`.
  await mkdir('/var/lib/lifeboat', { recursive: true, mode: 0o755 });
  scratch = await mkdtemp('/var/lib/lifeboat/install-test-');
  await chmod(scratch, 0o755);
  const install = await run({
    file: join(PROJECT_ROOT, 'runner', 'install.sh'),
    args: ['--root', scratch, '--no-start'],
  });
  installOut = install.stdout;
  unitPath = inScratch('/etc/systemd/system/lifeboat-runner.service');
  settings = serviceSettings(await readFile(unitPath, 'utf8'));
}, 60_000);

afterAll(async () => {
  if (runner?.exitCode === null) {
    runner.kill('SIGTERM');
    await runnerExit;
  }
  await removeTestVm(VM).catch(() => {});
  await stack?.stop();
  await removeHome(stack);
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 120_000);

describe('runner/install.sh --root', () => {
  it('lays out the unit, a 0600 settings file with the runner variables, and a state folder QEMU can pass', async () => {
    expect(installOut).toContain(`installed into ${scratch}: the host's systemd was left alone`);
    expect((await stat(unitPath)).mode & 0o777).toBe(0o644);
    const envFile = inScratch('/etc/lifeboat/runner.env');
    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
    expect((await stat(inScratch('/etc/lifeboat'))).mode & 0o777).toBe(0o700);
    expect((await stat(inScratch('/var/lib/lifeboat/runner'))).mode & 0o777).toBe(0o711);
    const template = await readFile(envFile, 'utf8');
    // The variables the runner reads today (runner/config.ts), named in the template.
    for (const name of [
      'LIFEBOAT_ENDPOINT',
      'LIFEBOAT_ENROLL_TOKEN_FILE',
      'LIFEBOAT_RUNNER_NAME',
      'LIFEBOAT_RESTORE_ROOTS',
      'LIFEBOAT_API_AUTH',
      'LIFEBOAT_HOST_ID',
      'TABLE_PROGRESS',
    ]) {
      expect(template).toContain(`# ${name}=`);
    }
    // The unit names the checkout's node and the runner's entry, and settings that exist.
    expect(one(settings, 'ExecStart')).toBe(
      `${PROJECT_ROOT}/node_modules/.bin/node --import tsx ${PROJECT_ROOT}/runner/main.ts`,
    );
    // systemd sets the state folder to StateDirectoryMode at every start: QEMU must still pass it.
    expect(Number.parseInt(one(settings, 'StateDirectoryMode'), 8) & 0o001).toBe(0o001);
  });

  it('refuses an unknown argument and a relative --root', async () => {
    const bad = await run({
      file: join(PROJECT_ROOT, 'runner', 'install.sh'),
      args: ['--root', 'relative'],
    }).catch((error: { exitCode?: number; stdout?: string }) => error);
    expect(bad).toMatchObject({ exitCode: 2 });
    const unknown = await run({
      file: join(PROJECT_ROOT, 'runner', 'install.sh'),
      args: ['--prefix', scratch],
    }).catch((error: { exitCode?: number; stdout?: string }) => error);
    expect(unknown).toMatchObject({ exitCode: 2 });
  });

  it('installs a unit that systemd-analyze verify accepts', async () => {
    const out = await run({ file: 'systemd-analyze', args: ['verify', unitPath] });
    expect(out.stderr.trim()).toBe('');
  });
});

describe('a runner started from the installed layout with the unit settings', () => {
  it('enrolls, backs up a running VM and restores a disk QEMU opens', async () => {
    await createTestVm({ name: VM, disks: [{ format: 'qcow2', sizeMiB: 16 }], running: true });
    stack = await startStack({ config: { runner: false } });
    const enrollment = await stack.json<{ token: string }>(['host', 'enroll', HOST_NAME]);

    // What an operator puts in the settings file after install.sh: the endpoint, the token file,
    // the stack's AWS settings (here local mode's emulators and its host sessions) and a restore root in the layout.
    const envFile = relocate(one(settings, 'EnvironmentFile').replace(/^-/, ''));
    const tokenFile = inScratch('/etc/lifeboat/enroll-token');
    await writeFile(tokenFile, `${enrollment.token}\n`, { mode: 0o600 });
    const config = await loadConfig(stack.home);
    const restoreRoot = inScratch('/var/lib/lifeboat/restores');
    const filled = {
      LIFEBOAT_ENDPOINT: stack.endpoint,
      LIFEBOAT_ENROLL_TOKEN_FILE: tokenFile,
      LIFEBOAT_RUNNER_NAME: HOST_NAME,
      LIFEBOAT_RESTORE_ROOTS: restoreRoot,
      LIFEBOAT_RUNNER_INVENTORY_SECONDS: '2',
      LIFEBOAT_RUNNER_POLL_WAIT: '2',
      AWS_REGION: config.region,
      // Its host's own key, from local mode's host sessions as Roles Anywhere gives it in AWS.
      LIFEBOAT_LOCAL_SESSION_URL: `http://127.0.0.1:${config.ports.sessions}`,
      AWS_ENDPOINT_URL_SQS: `http://127.0.0.1:${config.ports.sqs}`,
      AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${config.ports.dynamodb}`,
      AWS_ENDPOINT_URL_SFN: `http://127.0.0.1:${config.ports.stepfunctions}`,
      TABLE_PROGRESS: localTableName({ key: 'progress' }),
    };
    const template = await readFile(envFile, 'utf8');
    await writeFile(
      envFile,
      `${template}${Object.entries(filled)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')}\n`,
    );

    // systemd's start, spelled out: state folder, environment, user, umask, folder, command.
    const stateDir = inScratch(join('/var/lib', one(settings, 'StateDirectory')));
    await mkdir(stateDir, { recursive: true });
    await chmod(stateDir, Number.parseInt(one(settings, 'StateDirectoryMode'), 8));
    const user = one(settings, 'User');
    const env: Record<string, string> = {
      PATH: SYSTEMD_PATH,
      HOME: user === 'root' ? '/root' : '/',
      USER: user,
      LOGNAME: user,
      ...environmentFile(await readFile(envFile, 'utf8')),
    };
    for (const assignment of (settings.get('Environment') ?? []).flatMap(words)) {
      const at = assignment.indexOf('=');
      env[assignment.slice(0, at)] = relocate(assignment.slice(at + 1));
    }
    expect(env.LIFEBOAT_RUNNER_STATE_DIR).toBe(stateDir);
    const [file, ...args] = words(one(settings, 'ExecStart').replace(/^[-@+!:]+/, ''));
    const umask = Number.parseInt(one(settings, 'UMask'), 8);
    const previous = process.umask(umask);
    try {
      runner = spawn(file as string, args, {
        cwd: one(settings, 'WorkingDirectory'),
        env,
        uid: await idOf(user, '-u'),
        gid: await idOf(user, '-g'),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } finally {
      process.umask(previous);
    }
    const append = (chunk: Buffer) => {
      runnerLog += chunk.toString();
    };
    runner.stdout?.on('data', append);
    runner.stderr?.on('data', append);
    const started = runner;
    runnerExit = new Promise((resolve) => started.once('exit', (code) => resolve(code)));
    expect(umask).toBe(0o077);

    const host = await until(
      'the installed runner to register and report its inventory',
      async () => {
        if (started.exitCode !== null) throw new Error(`runner exited ${started.exitCode}: ${runnerLog}`);
        const { items } = await stack.api<{ items: Host[] }>('GET', '/hosts');
        return items.find((h) => h.name === HOST_NAME && h.state === 'MONITORED');
      },
      30_000,
    );
    // Registered: the token is spent, the host credential kept 0600 in the state folder.
    expect((await stat(join(stateDir, 'identity.json'))).mode & 0o777).toBe(0o600);
    expect(runnerLog).not.toContain(enrollment.token);
    const vmRecord = await stack.vm(VM, 'RUNNING');
    expect(vmRecord.hostId).toBe(host.id);

    const ds = await stack.json<Datastore>([
      'datastore',
      'create',
      '--name',
      'e2e-install',
      '--driver',
      'restic',
      '--attr',
      `BASE_PATH=${join(stack.home, 'restic')}`,
      '--attr',
      'RESTIC_PASSWORD=e2e install pw',
    ]);
    // A full backup of the running VM: QEMU writes to an overlay in the runner's work folder.
    const full = await backup(stack, vmRecord.id, ds.id);
    expect(full.execution, `${full.stderr}\n${runnerLog}`).toMatchObject({ state: 'SUCCEEDED' });
    // A chain start of the running VM: a pull-mode backup job, QEMU serving the disk on an NBD
    // socket and writing scratch files in the work folder's pull/ sub-folder.
    const modeSet = await stack.cli(['vm', 'backupconfig', String(vmRecord.id), 'MODE=INCREMENT']);
    expect(modeSet.code, modeSet.stderr).toBe(0);
    const taken = await backup(stack, vmRecord.id, ds.id);
    expect(taken.execution, `${taken.stderr}\n${runnerLog}`).toMatchObject({ state: 'SUCCEEDED' });
    expect(await imageOf(stack, taken.execution as Execution)).toMatchObject({ mode: 'INCREMENT' });

    const target = join(restoreRoot, 'r1');
    const out = await stack.cli([
      'image',
      'restore',
      String(taken.execution?.imageId),
      '--disk',
      '0',
      '--name',
      'lb-install-copy',
      '--to',
      target,
      '--wait',
      '--json',
    ]);
    const restored = JSON.parse(out.stdout || '{}') as Execution;
    expect(restored, `${out.stderr}\n${runnerLog}`).toMatchObject({ kind: 'restore', state: 'SUCCEEDED' });
    const files = await readdir(target);
    expect(files).toHaveLength(1);
    const disk = join(target, files[0] as string);
    // QEMU runs as libvirt-qemu: it must reach the folder (search bits on the way) and read the file.
    const modes = await folderModes(disk);
    expect(Object.entries(modes).filter(([, mode]) => !/[157]$/.test(mode))).toEqual([]);
    // As libvirt's DAC driver does when a domain starts on it (restored files are root's, 0600).
    await run({ file: 'chown', args: ['libvirt-qemu:kvm', disk] });
    const info = await run({
      file: 'runuser',
      args: ['-u', 'libvirt-qemu', '--', 'qemu-img', 'info', '--output', 'json', disk],
    });
    expect(JSON.parse(info.stdout)).toMatchObject({ format: 'qcow2', 'virtual-size': 16 * 1024 * 1024 });
  }, 150_000);
});
