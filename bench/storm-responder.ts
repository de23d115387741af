/**
 * A responder playing the runners of many hosts: it long-polls each host queue, and answers
 * every task with SendTaskSuccess after `delayMs` (a backup gets a plausible result, a cleanup
 * an empty one). It counts the host tasks in progress, in total and per host, which is what
 * MAX_BACKUPS / MAX_BACKUPS_HOST bound. Used by the storm bench and the scheduling tests.
 */
import { Agent } from 'node:http';
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { LocalCredentials } from '#local/credentials.ts';
import { generateHostKeyPair, type HostKeyPair } from '#platform/sealed-secrets.ts';

/**
 * The key of every host the responder plays, registered as `publicKey` with `POST /hosts`: Admit
 * seals datastore secrets to a host's key and refuses a host without one. The responder itself
 * never opens them.
 */
export const SIMULATED_HOST_KEY: HostKeyPair = generateHostKeyPair();

/** One host task as the responder saw it. */
export interface SeenTask {
  hostId: number;
  kind: string;
  taskId: string;
  vmId?: number;
  /** A backup task's BACKUP_CONFIG part (FS_FREEZE, MODE, INCREMENT_MODE). */
  config?: Record<string, string>;
  /** The backup job whose repository the task's datastore names. */
  jobId?: number;
  receivedAt: number;
}

/** A running responder. */
export interface HostResponder {
  tasks: SeenTask[];
  /** Delay before answering a task, changeable while running. */
  delayMs: number;
  /** Tasks this answers false for are recorded but never answered (a host that hangs). */
  hold: (task: SeenTask) => boolean;
  /** Long-poll wait of each ReceiveMessage, seconds (idle hosts cost one request per period). */
  pollSeconds: number;
  /** While set, answers wait for it after their delay (a test holds every host step at once). */
  gate: Promise<void> | undefined;
  /** Host tasks received and not yet answered, now and at most. */
  active(): number;
  peak(): number;
  peakPerHost(): number;
  stop(): Promise<void>;
}

/** The answer of a task, as a runner would send it. */
function outputOf(task: { kind: string; disks?: { id: number }[] }): unknown {
  if (task.kind !== 'backup') return { cleaned: [] };
  return {
    backupId: `snap-${Math.random().toString(16).slice(2, 10)}`,
    disks: (task.disks ?? []).map((d) => ({
      id: d.id,
      size: 4096,
      virtualSize: 1 << 20,
      format: 'raw',
      file: `disk.${d.id}.raw`,
    })),
    increment: null,
    template: '<domain/>',
    durationMs: 1,
  };
}

/** Start answering the queues (`hostId -> queue URL`) of the local stack at these endpoints. */
export function startHostResponder(opts: {
  sqsEndpoint: string;
  sfnEndpoint: string;
  /** The stack's per-start key (local/credentials.ts). */
  credentials: LocalCredentials;
  queues: ReadonlyMap<number, string>;
  delayMs: number;
  /** Long-poll wait (default 2 s; up to 20). */
  pollSeconds?: number;
  region?: string;
}): HostResponder {
  const abort = new AbortController();
  const agent = new Agent({ keepAlive: true, maxSockets: opts.queues.size + 64 });
  const handler = { httpAgent: agent, connectionTimeout: 5000, requestTimeout: 60_000 };
  const region = opts.region ?? 'us-east-1';
  const { credentials } = opts;
  const sqs = new SQSClient({ region, endpoint: opts.sqsEndpoint, credentials, requestHandler: handler });
  const sfn = new SFNClient({ region, endpoint: opts.sfnEndpoint, credentials, requestHandler: handler });
  const tasks: SeenTask[] = [];
  const perHost = new Map<number, number>();
  let active = 0;
  let peak = 0;
  let peakHost = 0;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();

  async function answer(hostId: number, body: string): Promise<void> {
    const task = JSON.parse(body) as {
      kind: string;
      taskId: string;
      token: string;
      vm?: { id: number };
      config?: Record<string, string>;
      datastore?: { jobId?: number };
    };
    const seen = {
      hostId,
      kind: task.kind,
      taskId: task.taskId,
      vmId: task.vm?.id,
      config: task.config,
      jobId: task.datastore?.jobId,
      receivedAt: Date.now(),
    };
    tasks.push(seen);
    if (responder.hold(seen)) return;
    const slotted = task.kind === 'backup';
    if (slotted) {
      active++;
      peak = Math.max(peak, active);
      const n = (perHost.get(hostId) ?? 0) + 1;
      perHost.set(hostId, n);
      peakHost = Math.max(peakHost, n);
    }
    try {
      if (responder.delayMs > 0) await new Promise((r) => setTimeout(r, responder.delayMs));
      if (responder.gate) await responder.gate;
      await sfn.send(
        new SendTaskSuccessCommand({ taskToken: task.token, output: JSON.stringify(outputOf(task)) }),
      );
    } finally {
      if (slotted) {
        active--;
        perHost.set(hostId, (perHost.get(hostId) ?? 1) - 1);
      }
    }
  }

  async function poll(hostId: number, queueUrl: string): Promise<void> {
    while (!stopped) {
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            WaitTimeSeconds: responder.pollSeconds,
            MaxNumberOfMessages: 10,
          }),
          { abortSignal: abort.signal },
        );
        const messages = out.Messages ?? [];
        if (messages.length === 0) continue;
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
        for (const m of messages) {
          const p = answer(hostId, m.Body ?? '{}').catch((err) => {
            if (!stopped) process.stderr.write(`responder: host ${hostId}: ${err}\n`);
          });
          inFlight.add(p);
          void p.finally(() => inFlight.delete(p));
        }
      } catch (err) {
        if (!stopped) await new Promise((r) => setTimeout(r, 200));
        void err;
      }
    }
  }

  const loops: Promise<void>[] = [];
  const responder: HostResponder = {
    tasks,
    delayMs: opts.delayMs,
    hold: () => false,
    gate: undefined,
    pollSeconds: opts.pollSeconds ?? 2,
    active: () => active,
    peak: () => peak,
    peakPerHost: () => peakHost,
    async stop() {
      stopped = true;
      abort.abort();
      await Promise.all(loops);
      await Promise.all([...inFlight]);
      sqs.destroy();
      sfn.destroy();
      agent.destroy();
    },
  };
  for (const [hostId, url] of opts.queues) loops.push(poll(hostId, url));
  return responder;
}
