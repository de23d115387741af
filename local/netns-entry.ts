/**
 * The first process inside a private network namespace (started by local/netns.ts as
 * `unshare --net --pid --fork --kill-child -- node netns-entry.ts SPEC`): brings the namespace's
 * loopback up, starts the service (DynamoDB Local's JVM), and forwards each connection on a Unix
 * socket in the home folder to the service's TCP port inside the namespace. Nothing it starts
 * can be reached from the network: the namespace has no interface but its own loopback.
 *
 * It stops the service, then exits, when its standard input closes (its parent, the
 * supervisor, stopped it or died: a crash must not leave a JVM behind) or on SIGTERM/SIGINT.
 * It is pid 1 of its own pid namespace, so when it dies for any reason the kernel kills the
 * service with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { NetnsSpec } from './netns.ts';

const STOP_GRACE_MS = 5000;

function ipBinary(): string {
  return ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p)) ?? 'ip';
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')}: exit code ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const spec = NetnsSpec.parse(JSON.parse(process.argv[2] ?? 'null'));
  await run(ipBinary(), ['link', 'set', 'lo', 'up']);

  let service: ChildProcess | undefined;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (!service || service.exitCode !== null || service.signalCode !== null) process.exit(0);
    service.kill('SIGTERM');
    setTimeout(() => service?.kill('SIGKILL'), STOP_GRACE_MS).unref();
  };
  process.stdin.on('end', stop).on('close', stop).on('error', stop).resume();
  process.on('SIGTERM', stop).on('SIGINT', stop);

  await rm(spec.socket, { force: true });
  const forwarder = createServer((client) => {
    const upstream = connect(spec.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    forwarder.once('error', reject);
    forwarder.listen(spec.socket, () => resolve());
  });
  await chmod(spec.socket, 0o600);

  if (stopping) process.exit(0);
  service = spawn(spec.command, spec.args, { cwd: spec.cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  service.once('error', (err) => {
    process.stderr.write(`${spec.command}: ${err.message}\n`);
    process.exit(1);
  });
  service.once('exit', (code, signal) => {
    forwarder.close();
    void rm(spec.socket, { force: true }).finally(() =>
      process.exit(stopping ? 0 : (code ?? (signal ? 1 : 0))),
    );
  });
}

main().catch((err: Error) => {
  process.stderr.write(`netns: ${err.message}\n`);
  process.exit(1);
});
