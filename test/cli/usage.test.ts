/**
 * Bad usage never reaches the API: exit 2 and exactly one line on stderr, nothing on stdout.
 * `--help` works everywhere with exit 0.
 */
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

/** Every case points at an API that does not exist: reaching it would exit 1, not 2. */
const ENV = { LIFEBOAT_ENDPOINT: 'http://127.0.0.1:9' };

describe('usage errors', () => {
  it.each([
    [[], /missing command/],
    [['vm'], /missing command: lifeboat vm list\|show\|backup\|backupconfig/],
    [['vm', 'explode'], /unknown command 'explode'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['vm', 'list', '--jsn'], /unknown option '--jsn'/],
    [['vm', 'show'], /missing required argument 'VMID'/],
    [['vm', 'show', 'abc'], /'abc' is invalid for argument 'VMID'/],
    [['vm', 'show', '-1'], /unknown option '-1'|invalid/],
    [['vm', 'backup', '3'], /required option '-d, --datastore <DSID>'/],
    [['vm', 'backup', '3', '-d', 'x'], /'x' is invalid/],
    [
      ['vm', 'backup', '3', '-d', '1', '--schedule', 'tomorrow'],
      /must be now, \+SECONDS or an ISO-8601 time/,
    ],
    [['vm', 'sched', 'add', '3', '--time', 'now'], /required option '-d, --datastore <DSID>'/],
    [
      ['vm', 'sched', 'add', '3', '-d', '1', '--time', 'now', '--repeat', 'cron'],
      /--repeat cron needs the expression/,
    ],
    [['backupjob', 'create', '--name', 'x', '--vms', '1,a', '-d', '1'], /--vms: a list of VM ids/],
    [
      ['backupjob', 'create', '--name', 'x', '--vms', '1', '-d', '1', '--execution', 'both'],
      /Allowed choices are sequential, parallel/,
    ],
    [['vm', 'backupconfig', '3', 'KEEP_LAST=2', 'oops'], /'oops' is invalid.*KEY=VALUE/],
    [['datastore', 'create', '--name', 'x', '--driver', 'ftp'], /Allowed choices are restic, rsync/],
    [['datastore', 'create', '--driver', 'restic'], /required option '--name <NAME>'/],
    [['datastore', 'update', '100'], /at least one --attr/],
    [['host', 'update', '1'], /needs --emulator-cpus, --max-backups-host or --owner/],
    [['host', 'update', '1', '--max-backups-host', 'many'], /--max-backups-host must be a positive integer/],
    [['host', 'enroll'], /missing required argument 'NAME'/],
    [['host', 'enroll', 'kvm-1', '--expires', '0'], /a positive integer/],
    [['datastore', 'update', '100', '--attr', '=x'], /'=x' is invalid.*KEY=VALUE/],
    [
      ['image', 'restore', '12', '--to', '/x', '--pool', 'rbd'],
      /'--to <DIR>' cannot be used with option '--pool <POOL>'/,
    ],
    [['image', 'restore', '12', '--pool', 'rbd', '--start'], /cannot be used with/],
    [['image', 'restore', '12', '--datastore', '1'], /unknown option '--datastore'/],
    [['image', 'list', '--type', 'os'], /Allowed choices are backup/],
    [['execution', 'show', '../x'], /is invalid for argument 'EXECID'/],
    [['local', 'up', '--port', '70000'], /port number/],
  ])('lifeboat %j exits 2 with one line', async (args, message) => {
    const result = await runCli(args, { env: ENV });
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^lifeboat: /);
    expect(result.stderr).toMatch(message);
  });

  it('exits 2 when no endpoint is configured anywhere', async () => {
    const result = await runCli(['vm', 'list']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(
      'lifeboat: no Lifeboat API endpoint: pass --endpoint, set LIFEBOAT_ENDPOINT or run `lifeboat local up`',
    );
  });
});

describe('--help', () => {
  it.each([[['--help']], [['vm', '--help']], [['vm', 'backup', '--help']], [['image', 'restore', '--help']]])(
    'lifeboat %j prints help and exits 0',
    async (args) => {
      const result = await runCli(args, { env: ENV });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/^Usage: lifeboat/);
    },
  );

  it('lists every command group of the contract', async () => {
    const result = await runCli(['--help']);
    for (const group of ['local', 'host', 'vm', 'datastore', 'image', 'execution']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${group} `, 'm'));
    }
  });
});
