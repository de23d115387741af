/**
 * Two real hosts on one local stack: host A is local mode's own runner on the machine's libvirtd,
 * host B a second runner (enrolled with `lifeboat host enroll`) on a second libvirtd in its own
 * mount namespace (test/helpers/second-libvirtd.ts). Shows, with real VMs and qcow2 files: a
 * backup of A restored, defined and started on B; a datastore operation run by the host its
 * BRIDGE_LIST names; MAX_BACKUPS_HOST held per host; a task of B handed to A's runner refused;
 * and a VM live-migrated from A to B keeping its id, backups and BACKUP_CONFIG, backed up next on
 * B. Each runner signs its AWS calls with its own host's key, got from local mode's session
 * endpoint with its own host credential (local/iam/sessions.ts), and host A's cannot receive from
 * B's queue at all.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Host, Image, Vm } from '#core/model.ts';
import { run } from '#drivers/exec.ts';
import { readLocalCredentials } from '#local/credentials.ts';
import { readIdentity } from '#runner/identity.ts';
import { hostSessionCredentials } from '#runner/session-credentials.ts';
import { kvmUsable, removeTestVm, TEST_VM_ROOT, virsh } from '../helpers/libvirt.ts';
import { type SecondLibvirtd, startSecondLibvirtd } from '../helpers/second-libvirtd.ts';
import { type SecondRunner, startSecondRunner } from '../helpers/second-runner.ts';
import { backup, guestSha256, processEnv, removeHome, type Stack, startStack, until } from './harness.ts';

const A_NAME = 'h10-host-a';
const B_NAME = 'h10-host-b';
/** VMs: SOURCE and SECOND on A, ON_B on B, MOVER moves from A to B, RESTORED is SOURCE's copy on B. */
const SOURCE = 'lb-h10h-src';
const SECOND = 'lb-h10h-a2';
const ON_B = 'lb-h10h-b1';
const MOVER = 'lb-h10h-mover';
const RESTORED = 'lb-h10h-restored';
const NAMES = [SOURCE, SECOND, ON_B, MOVER, RESTORED];

let b: SecondLibvirtd;
let stack: Stack;
let runnerB: SecondRunner;
let hostA: Host;
let hostB: Host;
let ds: Datastore;
let kvm: boolean;
/** Guest-visible sha256 of SOURCE's disk when it was backed up. */
let sourceSha: string;
/** Images the BRIDGE_LIST test deletes: SOURCE's (a VM of A) and ON_B's (a VM of B). */
let sourceImageId: number;
let onBImageId: number;

/** Defines a small OS-less domain on the daemon `uri` (one 32 MiB qcow2 disk), started if asked. */
async function defineVm(
  uri: string,
  name: string,
  opts: { running: boolean; pattern?: number; backupConfig?: Record<string, string> },
): Promise<string> {
  const dir = join(TEST_VM_ROOT, name);
  await removeTestVm(name);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const disk = join(dir, 'vda.qcow2');
  await run({ file: 'qemu-img', args: ['create', '-q', '-f', 'qcow2', disk, '32M'] });
  if (opts.pattern !== undefined) {
    const hex = `0x${opts.pattern.toString(16)}`;
    await run({ file: 'qemu-io', args: ['-f', 'qcow2', '-c', `write -P ${hex} 1M 2M`, disk] });
  }
  const config = Object.entries(opts.backupConfig ?? {})
    .map(([k, v]) => `<lifeboat:${k}>${v}</lifeboat:${k}>`)
    .join('');
  const xml = `<domain type='${kvm ? 'kvm' : 'qemu'}'>
  <name>${name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <metadata><lifeboat:vm xmlns:lifeboat="urn:lifeboat:vm:1">${config ? `<lifeboat:backup_config>${config}</lifeboat:backup_config>` : ''}</lifeboat:vm></metadata>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk>
  </devices>
</domain>`;
  await writeFile(join(dir, 'domain.xml'), xml);
  await run({ file: 'virsh', args: ['-c', uri, 'define', join(dir, 'domain.xml')] });
  if (opts.running) await run({ file: 'virsh', args: ['-c', uri, 'start', name] });
  return disk;
}

/** The VM record of `domain` (in `state` when given) once the inventory reported it on `host`. */
function vmOn(host: Host, domain: string, state?: Vm['state']): Promise<Vm> {
  return until(`VM ${domain} on host ${host.name}`, async () => {
    const { items } = await stack.api<{ items: Vm[] }>('GET', '/vms');
    return items.find((v) => v.domain === domain && v.hostId === host.id && (!state || v.state === state));
  });
}

const execution = (id: string) => stack.api<Execution>('GET', `/executions/${id}`);

/** Waits until execution `id` ended; answers it. */
function ended(id: string, timeoutMs = 120_000): Promise<Execution> {
  return until(
    `execution ${id} to end`,
    async () => {
      const e = await execution(id);
      return ['QUEUED', 'RUNNING'].includes(e.state) ? undefined : e;
    },
    timeoutMs,
  );
}

/** The JSON lines of `text`, parsed (other lines skipped). */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').flatMap((line): Record<string, unknown>[] => {
    try {
      const value: unknown = JSON.parse(line);
      return value !== null && typeof value === 'object' ? [value as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** The runner log lines (parsed) of one host: B's own log, A's through the supervisor log. */
async function runnerLines(host: 'A' | 'B'): Promise<Record<string, unknown>[]> {
  if (host === 'B') return jsonLines(runnerB.log());
  const supervisor = await readFile(join(stack.home, 'logs', 'supervisor.log'), 'utf8');
  return jsonLines(supervisor)
    .filter((l) => l.child === 'runner')
    .flatMap((l) => jsonLines(String(l.msg)));
}

/** Whether host `host`'s runner logged `msg` for a task of execution `id` (`<id>/<state>`). */
async function ranTask(host: 'A' | 'B', id: string, msg = 'task succeeded'): Promise<boolean> {
  return (await runnerLines(host)).some((l) => l.message === msg && String(l.taskId).startsWith(`${id}/`));
}

/** An SQS client of local mode's emulator with the stack's own key (the test plays the operator). */
async function queueClient(): Promise<SQSClient> {
  const env = await processEnv(await stack.runnerPid());
  const { accessKeyId, secretAccessKey } = await readLocalCredentials(stack.home);
  return new SQSClient({
    endpoint: env.AWS_ENDPOINT_URL_SQS,
    region: env.AWS_REGION,
    credentials: { accessKeyId, secretAccessKey },
  });
}

/**
 * The key a runner signs with: its host's session key, which local mode's session endpoint
 * (LIFEBOAT_LOCAL_SESSION_URL of the runner's environment) answers for the host credential in the
 * runner's identity.json, as the runner itself asks for it.
 */
async function runnerKey(
  stateDir: string,
  pid: number,
): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const env = await processEnv(pid);
  const identity = await readIdentity(stateDir);
  if (!identity) throw new Error(`no runner identity in ${stateDir}`);
  const provider = hostSessionCredentials({ url: env.LIFEBOAT_LOCAL_SESSION_URL as string, stateDir });
  const { accessKeyId, secretAccessKey } = await provider();
  return { accessKeyId, secretAccessKey };
}

/**
 * Queue-level refusal: host A's runner, with its own key (its host's session), cannot receive from
 * host B's queue, and B's cannot receive from A's; each reads its own. Neither runner holds an AWS
 * key in its environment: each proves its host to get its own.
 */
async function runnerAIsRefusedBsQueue(): Promise<void> {
  const envA = await processEnv(await stack.runnerPid());
  const envB = await processEnv(runnerB.pid());
  for (const env of [envA, envB]) {
    expect(env.AWS_ACCESS_KEY_ID).toBeUndefined();
    expect(env.AWS_SECRET_ACCESS_KEY).toBeUndefined();
    expect(env.LIFEBOAT_LOCAL_SESSION_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  }
  const keyA = await runnerKey(stack.runnerDir, await stack.runnerPid());
  const keyB = await runnerKey(runnerB.stateDir, runnerB.pid());
  expect(keyA.accessKeyId).not.toBe(keyB.accessKeyId);
  const as = (credentials: typeof keyA) =>
    new SQSClient({ endpoint: envA.AWS_ENDPOINT_URL_SQS, region: envA.AWS_REGION, credentials });
  const [asRunnerA, asRunnerB] = [as(keyA), as(keyB)];
  try {
    await expect(
      asRunnerA.send(new ReceiveMessageCommand({ QueueUrl: hostB.queueUrl, WaitTimeSeconds: 1 })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(
      asRunnerB.send(new ReceiveMessageCommand({ QueueUrl: hostA.queueUrl, WaitTimeSeconds: 1 })),
    ).rejects.toMatchObject({ name: 'AccessDeniedException' });
    // Its own queue still answers (nothing taken: visibility 0).
    await asRunnerA.send(
      new ReceiveMessageCommand({ QueueUrl: hostA.queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 0 }),
    );
    await asRunnerB.send(
      new ReceiveMessageCommand({ QueueUrl: hostB.queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 0 }),
    );
  } finally {
    asRunnerA.destroy();
    asRunnerB.destroy();
  }
}

beforeAll(async () => {
  kvm = await kvmUsable();
  b = await startSecondLibvirtd('h10-hosts-b');
  for (const name of NAMES) await removeTestVm(name);
  const sourceDisk = await defineVm('qemu:///system', SOURCE, { running: false, pattern: 0x5a });
  sourceSha = await guestSha256(sourceDisk, 'qcow2');
  await defineVm('qemu:///system', SECOND, { running: false, pattern: 0x6b });
  await defineVm('qemu:///system', MOVER, { running: true, backupConfig: { KEEP_LAST: '4' } });
  await defineVm(b.uri, ON_B, { running: false, pattern: 0x7c });

  stack = await startStack({
    config: { maxBackupsHost: 1, maxBackups: 5 },
    env: { LIFEBOAT_RUNNER_NAME: A_NAME },
  });
  hostA = await until('host A MONITORED', async () => {
    const { items } = await stack.api<{ items: Host[] }>('GET', '/hosts');
    return items.find((h) => h.name === A_NAME && h.state === 'MONITORED');
  });
  runnerB = await startSecondRunner(stack, { name: B_NAME, libvirtUri: b.uri });
  hostB = runnerB.host;
  ds = await stack.json<Datastore>([
    'datastore',
    'create',
    '--name',
    'h10-two-hosts',
    '--driver',
    'restic',
    '--attr',
    `BASE_PATH=${join(stack.home, 'restic')}`,
    '--attr',
    'RESTIC_PASSWORD=two hosts pw',
  ]);
}, 300_000);

afterAll(async () => {
  await runnerB?.stop().catch(() => {});
  for (const name of NAMES) await removeTestVm(name).catch(() => {});
  await stack?.stop().catch(() => {});
  await b?.stop().catch(() => {});
  for (const name of NAMES) await rm(join(TEST_VM_ROOT, name), { recursive: true, force: true });
  // The only refusals: each runner's key at the other host's queue (runnerAIsRefusedBsQueue).
  const otherQueue = (principal: string, resource: string) =>
    (principal === `host:${A_NAME}` && resource.endsWith(`:lifeboat-host-${hostB?.id}`)) ||
    (principal === `host:${B_NAME}` && resource.endsWith(`:lifeboat-host-${hostA?.id}`));
  await removeHome(stack, {
    expected: (c) => c.action === 'sqs:ReceiveMessage' && otherQueue(c.principal, c.resource),
  });
}, 120_000);

describe('two real hosts', () => {
  it('are two hosts of one control plane, each seeing its own libvirtd', async () => {
    expect(hostA.id).not.toBe(hostB.id);
    expect(hostA.queueUrl).not.toBe(hostB.queueUrl);
    const onB = await vmOn(hostB, ON_B, 'POWEROFF');
    const onA = await vmOn(hostA, SOURCE, 'POWEROFF');
    expect(onA.id).not.toBe(onB.id);
    // Each daemon holds its own domains only, and they are two libvirt hosts.
    expect(await b.virsh('list', '--all', '--name')).not.toContain(SOURCE);
    expect(await virsh('list', '--all', '--name')).not.toContain(ON_B);
    expect(await b.virsh('capabilities')).toContain(`<uuid>${b.hostUuid}</uuid>`);
  });

  it('a backup taken on A is restored, defined and started on B, with the backup bytes', async () => {
    const vm = await vmOn(hostA, SOURCE, 'POWEROFF');
    const taken = await backup(stack, vm.id, ds.id);
    expect(taken.execution).toMatchObject({ state: 'SUCCEEDED', hostId: hostA.id });
    expect(await ranTask('A', taken.execution?.id as string)).toBe(true);
    const image = await stack.json<Image>(['image', 'show', String(taken.execution?.imageId)]);
    sourceImageId = image.id;

    const dir = join(TEST_VM_ROOT, RESTORED);
    const out = await stack.cli([
      'image',
      'restore',
      String(image.id),
      '--host',
      String(hostB.id),
      '--start',
      '--name',
      RESTORED,
      '--to',
      dir,
      '--wait',
      '--json',
    ]);
    expect(out.stderr).not.toMatch(/error/i);
    const restored = JSON.parse(out.stdout) as Execution;
    expect(restored).toMatchObject({ kind: 'restore', state: 'SUCCEEDED', hostId: hostB.id });
    expect(await ranTask('B', restored.id)).toBe(true);
    expect(await ranTask('A', restored.id, 'task started')).toBe(false);
    // Defined and running on B's libvirtd, unknown to A's.
    expect((await b.virsh('domstate', RESTORED)).trim()).toBe('running');
    await expect(virsh('domstate', RESTORED)).rejects.toThrow();
    const live = await b.virsh('dumpxml', RESTORED);
    const disk = /<source file='([^']+)'/.exec(live)?.[1] as string;
    expect(disk.startsWith(`${dir}/`)).toBe(true);
    await b.virsh('destroy', RESTORED);
    expect(await guestSha256(disk, 'qcow2')).toBe(sourceSha);
    // B's inventory reports it as a VM of B.
    runnerB.inventoryNow();
    await vmOn(hostB, RESTORED);
  });

  it('MAX_BACKUPS_HOST=1 holds per host: two backups on A one after the other, B not waiting for A', async () => {
    const [source, second, onB] = await Promise.all([
      vmOn(hostA, SOURCE),
      vmOn(hostA, SECOND, 'POWEROFF'),
      vmOn(hostB, ON_B, 'POWEROFF'),
    ]);
    // A's runner is held (SIGSTOP) so A's first backup keeps its slot as long as the test needs:
    // what follows is read from execution states, not from how long a backup takes.
    const runnerA = await stack.runnerPid();
    process.kill(runnerA, 'SIGSTOP');
    let resumed = false;
    try {
      const request = async (vm: Vm) =>
        stack.json<Execution>(['vm', 'backup', String(vm.id), '-d', String(ds.id)]);
      const a1 = await request(source);
      const a2 = await request(second);
      const b1 = await request(onB);
      const doneB = await ended(b1.id, 60_000);
      expect(doneB).toMatchObject({ state: 'SUCCEEDED', hostId: hostB.id });
      onBImageId = doneB.imageId as number;
      // B's backup ran to its end while A held exactly one of its two backups running.
      const [heldA1, heldA2] = await Promise.all([execution(a1.id), execution(a2.id)]);
      const states = [heldA1, heldA2].map((e) => e.state).sort();
      expect(states).toEqual(['QUEUED', 'RUNNING']);
      const waiting = heldA1.state === 'QUEUED' ? heldA1 : heldA2;
      expect(waiting.startedAt).toBeUndefined();
      process.kill(runnerA, 'SIGCONT');
      resumed = true;
      const [doneA1, doneA2] = await Promise.all([ended(a1.id), ended(a2.id)]);
      for (const done of [doneA1, doneA2])
        expect(done).toMatchObject({ state: 'SUCCEEDED', hostId: hostA.id });
      const [first, then] = [doneA1, doneA2].sort(
        (x, y) => Date.parse(x.startedAt ?? '') - Date.parse(y.startedAt ?? ''),
      );
      // A's second backup started only once its first had ended.
      expect(Date.parse(then?.startedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first?.endedAt ?? ''));
      // B's started after A's first and ended before it: concurrent with it.
      expect(Date.parse(doneB.startedAt ?? '')).toBeGreaterThanOrEqual(Date.parse(first?.startedAt ?? ''));
      expect(Date.parse(doneB.endedAt ?? '')).toBeLessThanOrEqual(Date.parse(first?.endedAt ?? ''));
    } finally {
      if (!resumed) process.kill(runnerA, 'SIGCONT');
    }
  });

  it("a datastore operation runs on its BRIDGE_LIST host, not on the image's VM's host", async () => {
    const remove = async (imageId: number) => {
      const out = await stack.cli(['image', 'delete', String(imageId), '--wait', '--json']);
      expect(out.code, out.stderr).toBe(0);
      return JSON.parse(out.stdout) as Execution;
    };
    // SOURCE's image (a VM of A) with BRIDGE_LIST naming B: B's runner removes its data.
    await stack.json(['datastore', 'update', String(ds.id), '--attr', `BRIDGE_LIST=${B_NAME}`]);
    const onB = await remove(sourceImageId);
    expect(onB).toMatchObject({ state: 'SUCCEEDED', hostId: hostB.id });
    expect(await ranTask('B', onB.id)).toBe(true);
    expect(await ranTask('A', onB.id, 'task started')).toBe(false);
    // ON_B's image (a VM of B) with BRIDGE_LIST naming A: A's runner does.
    await stack.json(['datastore', 'update', String(ds.id), '--attr', `BRIDGE_LIST=${A_NAME}`]);
    const onA = await remove(onBImageId);
    expect(onA).toMatchObject({ state: 'SUCCEEDED', hostId: hostA.id });
    expect(await ranTask('A', onA.id)).toBe(true);
    expect(await ranTask('B', onA.id, 'task started')).toBe(false);
    for (const id of [sourceImageId, onBImageId]) {
      await expect(stack.api('GET', `/images/${id}`)).rejects.toThrow(/404/);
    }
  });

  it("a task of host B handed to A's runner is refused there, and B's runner runs it", async () => {
    const vm = await vmOn(hostB, ON_B, 'POWEROFF');
    // B's runner is stopped, so its task waits on B's queue for the test to copy it.
    await runnerB.stop();
    // The SQS emulator hands a message to a long poll still open when its client went away:
    // let the stopped runner's last poll (LIFEBOAT_RUNNER_POLL_WAIT, 2 s) expire first.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    let restarted = false;
    const sqs = await queueClient();
    try {
      const requested = await stack.json<Execution>(['vm', 'backup', String(vm.id), '-d', String(ds.id)]);
      const received = await until("the task on B's queue", async () => {
        const out = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: hostB.queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 120 }),
        );
        return out.Messages?.[0];
      });
      const body = JSON.parse(received.Body as string) as { taskId: string; kind: string };
      expect(body).toMatchObject({ kind: 'backup', taskId: `${requested.id}/RunOnHost` });
      // The same message, on A's queue (as a misrouted or copied delivery would put it).
      await sqs.send(
        new SendMessageCommand({ QueueUrl: hostA.queueUrl, MessageBody: received.Body as string }),
      );
      const refused = await until('A to refuse the task', async () =>
        (await runnerLines('A')).find(
          (l) => l.taskId === body.taskId && l.message === 'task refused: it is for another host',
        ),
      );
      expect(refused).toMatchObject({ level: 'warn', forHost: hostB.id });
      expect(await ranTask('A', requested.id, 'task started')).toBe(false);
      // Not answered by A either: the execution still waits for B.
      expect(await execution(requested.id)).toMatchObject({ state: 'RUNNING' });

      // Handed back to B's queue (the copy taken off it, the same message put back), B's runner runs it.
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: hostB.queueUrl, ReceiptHandle: received.ReceiptHandle }),
      );
      await sqs.send(
        new SendMessageCommand({ QueueUrl: hostB.queueUrl, MessageBody: received.Body as string }),
      );
      await runnerB.restart();
      restarted = true;
      const done = await ended(requested.id);
      expect(done).toMatchObject({ state: 'SUCCEEDED', hostId: hostB.id });
      expect(await ranTask('B', requested.id)).toBe(true);
    } finally {
      sqs.destroy();
      if (!restarted) await runnerB.restart();
    }
  }, 180_000);

  it(
    "host A's runner cannot receive from host B's queue, nor B's from A's (IAM, each its own key)",
    runnerAIsRefusedBsQueue,
  );

  it('a VM moved from A to B keeps its id, backups and BACKUP_CONFIG, and its next backup runs on B', async () => {
    const vm = await vmOn(hostA, MOVER, 'RUNNING');
    expect(vm.backups.BACKUP_CONFIG.KEEP_LAST).toBe('4');
    const before = await backup(stack, vm.id, ds.id);
    expect(before.execution).toMatchObject({ state: 'SUCCEEDED', hostId: hostA.id });
    // As the backup left it (LAST_BACKUP_ID and LAST_BACKUP_SIZE set at its commit).
    const config = (await stack.api<Vm>('GET', `/vms/${vm.id}`)).backups.BACKUP_CONFIG;
    expect(config.LAST_BACKUP_SIZE).toMatch(/^\d+$/);
    const uuid = (await virsh('domuuid', MOVER)).trim();

    // Live migration between the two daemons (loopback TCP, shared storage); the domain leaves A.
    await virsh(
      'migrate',
      '--live',
      '--persistent',
      '--undefinesource',
      '--unsafe',
      MOVER,
      b.uri,
      '--migrateuri',
      'tcp://127.0.0.1',
    );
    expect((await b.virsh('domstate', MOVER)).trim()).toBe('running');
    expect((await b.virsh('domuuid', MOVER)).trim()).toBe(uuid);
    await expect(virsh('domstate', MOVER)).rejects.toThrow();
    // Both inventories now (A reports it gone, B reports its UUID).
    process.kill(await stack.runnerPid(), 'SIGHUP');
    runnerB.inventoryNow();
    const moved = await until('VM to move to host B', async () => {
      const now = await stack.api<Vm>('GET', `/vms/${vm.id}`);
      runnerB.inventoryNow();
      return now.hostId === hostB.id && now.state === 'RUNNING' ? now : undefined;
    });
    expect(moved).toMatchObject({ id: vm.id, uuid, domain: MOVER });
    expect(moved.backups.BACKUP_CONFIG).toEqual(config);
    expect(moved.backups.BACKUP_IDS).toContain(before.execution?.imageId);
    expect(moved.moves?.at(-1)).toMatchObject({
      from: hostA.id,
      to: hostB.id,
      domain: MOVER,
      reason: 'GONE',
    });
    const { items } = await stack.api<{ items: Vm[] }>('GET', '/vms');
    expect(items.filter((v) => v.uuid === uuid).map((v) => v.id)).toEqual([vm.id]);

    const after = await backup(stack, vm.id, ds.id);
    expect(after.execution, JSON.stringify(after.execution?.error)).toMatchObject({
      state: 'SUCCEEDED',
      hostId: hostB.id,
      vmId: vm.id,
    });
    expect(await ranTask('B', after.execution?.id as string)).toBe(true);
    const last = await stack.api<Vm>('GET', `/vms/${vm.id}`);
    expect(last.backups.BACKUP_IDS).toEqual(
      expect.arrayContaining([before.execution?.imageId, after.execution?.imageId]),
    );
  }, 180_000);
});
