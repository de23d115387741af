/**
 * A private sshd for tests: 127.0.0.1 on a free port, its own host key, config and authorized
 * key, root login by key only, sftp through internal-sftp. The client configuration it writes is
 * what tests put in `LIFEBOAT_SSH_CONFIG`, so nothing touches the user's own ssh files.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Sshd {
  /** ssh client configuration file (`ssh -F`), valid for any host name pointing at this sshd. */
  configPath: string;
  host: string;
  port: number;
  /** The helper's private folder (keys, configs). */
  dir: string;
  stop(): Promise<void>;
}

/** Alias the host key is recorded under, so `127.0.0.1` on any port matches it. */
const HOST_KEY_ALIAS = 'lifeboat-test-sshd';

import { freePort } from '#local/ports.ts';

export { freePort };

/** What the server offers beyond a shell with sftp (the default). */
export interface SshdOptions {
  /** false: no sftp subsystem (an account with a shell only). */
  sftp?: boolean;
  /** Every session runs this instead of what the client asked (an account with no shell). */
  forceCommand?: string;
}

/** Starts the sshd and waits until it accepts connections. */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-sshd-'));
  const port = await freePort();
  mkdirSync('/run/sshd', { recursive: true });
  for (const key of ['host_key', 'client_key']) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', key, '-f', join(dir, key)]);
  }
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')), { mode: 0o600 });
  const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  await writeFile(join(dir, 'known_hosts'), `${HOST_KEY_ALIAS} ${hostPub}\n`);
  const sshdConfig = join(dir, 'sshd_config');
  await writeFile(
    sshdConfig,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // The key files sit under /tmp, which StrictModes rejects (world-writable parent).
      'StrictModes no',
      'MaxStartups 100',
      'MaxSessions 100',
      'LogLevel ERROR',
      ...(options.sftp === false ? [] : ['Subsystem sftp internal-sftp']),
      ...(options.forceCommand ? [`ForceCommand ${options.forceCommand}`] : []),
      '',
    ].join('\n'),
  );
  const configPath = join(dir, 'ssh_config');
  await writeFile(
    configPath,
    [
      'Host *',
      '  User root',
      `  IdentityFile ${join(dir, 'client_key')}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${join(dir, 'known_hosts')}`,
      '  GlobalKnownHostsFile /dev/null',
      `  HostKeyAlias ${HOST_KEY_ALIAS}`,
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', sshdConfig], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await waitForPort(port, child, () => stderr);
  return {
    configPath,
    host: '127.0.0.1',
    port,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`sshd did not listen on ${port}: ${stderr()}`);
}
