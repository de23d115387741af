/**
 * `npm run bench -- storm`: a storm of backup requests (default 10,000 over 1,000 simulated hosts,
 * 10 VMs each) on the local control plane, with every host step answered at once by a
 * responder playing the hosts' runners from a worker thread (other machines in a deployment:
 * bench/storm-responder-thread.ts). The control plane runs in this process (as the supervisor
 * would run it), so the real calls can be counted where they happen:
 *
 * - DynamoDB writes: a middleware on the handlers' shared DynamoDB client counts every write
 *   request item (PutItem, UpdateItem, DeleteItem, each item of TransactWriteItems and
 *   BatchWriteItem). AWS bills a transactional item twice (2 write request units): `wru_per_backup`.
 * - Lambda invocations: the API function once per request this bench sends, the dispatcher once per
 *   Invoke the handlers send (middleware on their Lambda client) plus the scheduled ticks, and
 *   the step functions (Admit, Commit, Release, ...) from the execution histories.
 * - Step Functions transitions: StateEntered events of the execution histories (GetExecutionHistory
 *   of a sample of executions).
 *
 * Prices (AWS public, us-east-1): Step Functions standard $0.025 per 1,000 state transitions;
 * Lambda $0.20 per 1M requests plus duration, assumed 100 ms per invocation at 256 MB on arm64
 * ($0.0000133334 per GB-s, the functions' configured memory); DynamoDB on-demand $1.25 per 1M
 * write request units. Reads, SQS and logs are left out.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import { newToken, tokenHash } from '#local/admin.ts';
import { homePaths, LocalConfigFile, resolveConfig } from '#local/config.ts';
import { startControlPlane } from '#local/control-plane.ts';
import { freeStackPorts } from '#local/ports.ts';
import { countsBetween, type RequestCounts } from '#local/request-counts.ts';
import { NodeSha256 } from '#local/sigv4-check.ts';
import { cpuBetween, processTree } from './control-cpu.ts';
import { apiClient } from './stack.ts';
import { SIMULATED_HOST_KEY } from './storm-responder.ts';
import {
  type ResponderFigures,
  type ResponderThread,
  startResponderThread,
} from './storm-responder-thread.ts';

/** Options of the storm. */
export interface StormOptions {
  requests: number;
  hosts: number;
  maxBackups: number;
  maxBackupsHost: number;
  /** Concurrent API clients sending the requests. */
  clients: number;
  /** Executions whose history is read for transitions and step invocations. */
  sample: number;
  /**
   * A user (group `users`) who owns every VM, so each backup is charged to their datastore
   * quota; default: admin's VMs, which quotas exempt.
   */
  owner?: string;
  log: (line: string) => void;
}

const PRICE = {
  transition: 0.025 / 1000,
  lambdaRequest: 0.2 / 1e6,
  // 100 ms at 256 MB arm64.
  lambdaDuration: 0.1 * 0.25 * 0.0000133334,
  writeUnit: 1.25 / 1e6,
};

/** Run `fn` over `items` with at most `limit` at a time. */
async function pool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function runStorm(opts: StormOptions) {
  const { log } = opts;
  const home = await mkdtemp(join(tmpdir(), 'lifeboat-storm-'));
  const paths = homePaths(home);
  for (const dir of [paths.logs, paths.dynamodb, paths.sqs, paths.stepfunctions, paths.secrets]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }
  const ports = await freeStackPorts();
  const schedulerIntervalSeconds = 60;
  const file = LocalConfigFile.parse({
    ports,
    maxBackups: opts.maxBackups,
    maxBackupsHost: opts.maxBackupsHost,
    heartbeatSeconds: 300,
    // The bench plays the hosts and reports their inventory once: they must not go OFFLINE.
    hostOfflineSeconds: 86_400,
    schedulerIntervalSeconds,
    // The responder plays the hosts: only the operations the storm asks for.
    monitorIntervalMinutes: 0,
    runner: false,
    demo: false,
  });
  await writeFile(paths.config, JSON.stringify(file));
  const config = resolveConfig(file);
  const token = newToken();
  process.env.LIFEBOAT_LOG_LEVEL = 'quiet';
  const errors: string[] = [];
  const plane = await startControlPlane({
    paths,
    config,
    adminTokenHash: tokenHash(token),
    log: (entry) => {
      if (entry.level === 'error' && errors.length < 20) errors.push(JSON.stringify(entry));
    },
  });
  // The emulators take only requests signed with this start's key.
  const credentials = plane.credentials;
  const reader = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: config.region,
      endpoint: `http://127.0.0.1:${ports.dynamodb}`,
      credentials,
    }),
  );
  let responder: ResponderThread | undefined;
  try {
    // The functions run in worker threads from bundles: their DynamoDB calls are counted where
    // they arrive, by the stack's signed proxy (GET /health `dynamodbCalls`, per signer).
    const readCounts = async (): Promise<RequestCounts> => {
      const res = await fetch(`${plane.endpoint}/health`);
      const body = (await res.json()) as { dynamodbCalls?: RequestCounts };
      if (!body.dynamodbCalls) throw new Error('GET /health has no dynamodbCalls');
      return body.dynamodbCalls;
    };
    const api = apiClient(plane.endpoint, token);
    const t0 = Date.now();
    await api('POST', '/datastores', {
      name: 'storm',
      driver: 'restic',
      attributes: { RESTIC_PASSWORD: 'pw' },
    });
    if (opts.owner) await api('POST', '/users', { name: opts.owner });
    const vmsPerHost = Math.ceil(opts.requests / opts.hosts);
    const queues = new Map<number, string>();
    const vmIds: number[] = [];
    const hostIndexes = Array.from({ length: opts.hosts }, (_, i) => i);
    let made = 0;
    await pool(hostIndexes, 16, async (h) => {
      const host = (await api('POST', '/hosts', {
        name: `storm-${h}`,
        publicKey: SIMULATED_HOST_KEY.publicKey,
      })) as { id: number; queueUrl: string };
      queues.set(host.id, host.queueUrl);
      const domains = Array.from({ length: vmsPerHost }, (_, i) => ({
        domain: `vm-${h}-${i}`,
        state: 'RUNNING',
        disks: [{ id: 0, target: 'vda', source: `/images/${h}-${i}.qcow2`, format: 'qcow2', size: 1 << 20 }],
        nics: [],
        template: '<domain/>',
      }));
      // The inventory answers the host's VMs (a GET /vms?hostId= would scan every VM).
      const listed = (await api('PUT', `/hosts/${host.id}/inventory`, { vms: domains })).items as {
        id: number;
      }[];
      vmIds.push(...listed.map((v) => v.id));
      for (const v of opts.owner ? listed : []) {
        await api('PUT', `/vms/${v.id}/owner`, { owner: opts.owner, group: 'users' });
      }
      if (++made % 100 === 0) log(`setup: ${made} hosts, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    });
    log(`setup: ${opts.hosts} hosts, ${vmIds.length} VMs in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // Interleave hosts, as requests from many places would arrive.
    const targets = vmIds
      .sort((a, b) => (a % vmsPerHost) - (b % vmsPerHost) || a - b)
      .slice(0, opts.requests);

    responder = await startResponderThread({
      sqsEndpoint: `http://127.0.0.1:${ports.sqs}`,
      sfnEndpoint: `http://127.0.0.1:${ports.stepfunctions}`,
      credentials,
      queues,
      // Idle hosts poll once per 20 s (as the runner's long poll): 1,000 hosts polling every
      // 2 s were 500 requests a second, most of this process's CPU.
      pollSeconds: 20,
    });
    let peakActive = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const out = await reader.send(
          new GetCommand({ TableName: 'lifeboat-counters', Key: { name: 'active' }, ConsistentRead: true }),
        );
        peakActive = Math.max(peakActive, Number(out.Item?.value ?? 0));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const countsBefore = await readCounts();
    // CPU while the storm runs: this process (the whole control plane and the API clients; the
    // hosts' thread counted apart) against its children (DynamoDB Local), to tell which limits.
    const cpuBefore = await processTree(process.pid);
    const responderBefore = (await responder.figures()).cpuSeconds;
    const start = Date.now();
    const ids: string[] = [];
    let refused = 0;
    await pool(targets, opts.clients, async (vmId) => {
      try {
        const execution = (await api('POST', `/vms/${vmId}/backup`, { datastoreId: 1 })) as { id: string };
        ids.push(execution.id);
      } catch (err) {
        refused++;
        if (errors.length < 20) errors.push(String(err));
      }
    });
    const requested = Date.now();
    const cpuAccepted = cpuBetween(cpuBefore, await processTree(process.pid));
    const responderAccepted = (await responder.figures()).cpuSeconds - responderBefore;
    log(
      `${ids.length} requests accepted in ${((requested - start) / 1000).toFixed(1)} s (${refused} refused)`,
    );
    // Done when every backup's host step was answered and every slot given back.
    let lastReport = Date.now();
    let lastAnswered = -1;
    let lastMove = Date.now();
    let figures: ResponderFigures;
    for (;;) {
      figures = await responder.figures();
      const answered = figures.backupsSeen;
      const active = Number(
        (
          await reader.send(
            new GetCommand({ TableName: 'lifeboat-counters', Key: { name: 'active' }, ConsistentRead: true }),
          )
        ).Item?.value ?? 0,
      );
      if (answered >= ids.length && active === 0) break;
      // Some backups failed before their host step (refused at Admit, say): once nothing moves
      // for 30 s with no slot held, the rest will not come.
      if (answered !== lastAnswered) {
        lastAnswered = answered;
        lastMove = Date.now();
      } else if (active === 0 && Date.now() - lastMove > 30_000) {
        log(`${ids.length - answered} backups never reached their host: not waited for`);
        break;
      }
      if (Date.now() - lastReport > 10_000) {
        log(
          `${answered}/${ids.length} host steps, ${active} active, ${((Date.now() - start) / 1000).toFixed(0)} s`,
        );
        lastReport = Date.now();
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const ended = Date.now();
    const cpuEnded = cpuBetween(cpuBefore, await processTree(process.pid));
    const responderEnded = (await responder.figures()).cpuSeconds - responderBefore;
    sampling = false;
    await sampler;
    const calls = callsOfBackups(countsBetween(countsBefore, await readCounts()));

    const all = (await api('GET', '/executions')).items as {
      id: string;
      state: string;
      startedAt?: string;
      executionArn?: string;
    }[];
    const mine = all.filter((e) => ids.includes(e.id));
    const states: Record<string, number> = {};
    for (const e of mine) states[e.state] = (states[e.state] ?? 0) + 1;
    const lastStart = Math.max(...mine.map((e) => Date.parse(e.startedAt ?? '') || 0));
    const startSpan = (lastStart - start) / 1000;

    // Transitions and step invocations from a sample of histories.
    const sample = mine
      .filter((_, i) => i % Math.max(1, Math.floor(mine.length / opts.sample)) === 0)
      .slice(0, opts.sample);
    let transitions = 0;
    let steps = 0;
    const signer = new SignatureV4({
      credentials,
      region: config.region,
      service: 'states',
      sha256: NodeSha256,
    });
    for (const e of sample) {
      // Raw call: the SDK drops the shim's `localDetails` (not an AWS field), which names the
      // state. Signed as the SDK signs (the emulators refuse anything else: unsigned, this read
      // got a refusal and counted no transition at all).
      const body = JSON.stringify({ executionArn: e.executionArn });
      const host = `127.0.0.1:${ports.stepfunctions}`;
      const signed = await signer.sign({
        method: 'POST',
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: ports.stepfunctions,
        path: '/',
        query: {},
        headers: {
          host,
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'AWSStepFunctions.GetExecutionHistory',
        },
        body,
      });
      const res = await fetch(`http://${host}/`, {
        method: 'POST',
        headers: signed.headers as Record<string, string>,
        body,
      });
      if (!res.ok) throw new Error(`GetExecutionHistory: HTTP ${res.status} ${await res.text()}`);
      const history = (await res.json()) as { events?: { type: string; localDetails?: string }[] };
      for (const ev of history.events ?? []) {
        const entered = enteredState(ev);
        if (!entered) continue;
        transitions++;
        if (entered.type === 'Task' && !/RunOnHost|Cleanup/.test(entered.name)) steps++;
      }
    }
    const n = ids.length;
    const ticks = Math.ceil((ended - start) / 1000 / schedulerIntervalSeconds);
    const transitionsPerBackup = transitions / sample.length;
    const stepsPerBackup = steps / sample.length;
    // Dispatcher invocations are not counted (they run in workers): the scheduled ticks only.
    const invocationsPerBackup = (n + ticks) / n + stepsPerBackup;
    const writesPerBackup = calls.writeItems / n;
    const wruPerBackup = calls.writeUnits / n;
    const per = (v: number) => (v / Math.max(1, n)).toFixed(2);
    const usdPer1000 =
      1000 *
      (transitionsPerBackup * PRICE.transition +
        invocationsPerBackup * (PRICE.lambdaRequest + PRICE.lambdaDuration) +
        wruPerBackup * PRICE.writeUnit);
    log(
      `states ${JSON.stringify(states)}; all ended ${((ended - start) / 1000).toFixed(1)} s after the first request`,
    );
    log(
      `per backup: ${transitionsPerBackup.toFixed(1)} transitions, ${invocationsPerBackup.toFixed(2)} invocations (API 1, dispatcher ticks ${(ticks / n).toFixed(2)}, steps ${stepsPerBackup.toFixed(2)}), ${writesPerBackup.toFixed(1)} write requests (${wruPerBackup.toFixed(1)} WRU)`,
    );
    log(
      `DynamoDB per backup: ${per(calls.total)} calls (${per(calls.reads)} reads, ${per(calls.writes)} write requests, ${per(calls.writeItems)} items written); authorizer ${per(calls.authorizer)} more (its answers cached per token, as in AWS); bench's own reads left out: ${calls.excluded}`,
    );
    for (const [caller, c] of Object.entries(calls.byCaller).sort((a, b) => b[1].total - a[1].total)) {
      log(
        `  ${caller}: ${per(c.total)} (${Object.entries(c.ops)
          .sort((a, b) => b[1] - a[1])
          .map(([op, v]) => `${op} ${per(v)}`)
          .join(', ')})`,
      );
    }
    const cores = availableParallelism();
    const pct = (cpu: number, seconds: number) => `${((100 * cpu) / seconds).toFixed(0)}%`;
    for (const [when, cpu, hosts, seconds] of [
      ['accepting', cpuAccepted, responderAccepted, (requested - start) / 1000],
      ['to the end', cpuEnded, responderEnded, (ended - start) / 1000],
    ] as const) {
      // The hosts' thread is in this process: its own CPU is taken out of the control plane's.
      const own = cpu.byRole.supervisor - hosts;
      const children = cpu.byRole.other;
      log(
        `CPU ${when} (${seconds.toFixed(1)} s, ${cores} cores): this process (control plane, API clients) ${own.toFixed(1)} s = ${pct(own, seconds)} of a core, DynamoDB Local ${children.toFixed(1)} s = ${pct(children, seconds)}; ${((1000 * (own + children)) / Math.max(1, n)).toFixed(1)} ms per backup; the simulated hosts' thread ${hosts.toFixed(1)} s = ${pct(hosts, seconds)}`,
      );
    }
    if (errors.length) log(`errors: ${errors.slice(0, 5).join(' | ')}`);
    return {
      requests: n,
      hosts: opts.hosts,
      succeeded: states.SUCCEEDED ?? 0,
      seconds_to_last_start: Number(startSpan.toFixed(1)),
      starts_per_s: Number((n / startSpan).toFixed(1)),
      peak_active: Math.max(peakActive, figures.peak),
      max_backups: opts.maxBackups,
      peak_active_host: figures.peakPerHost,
      max_backups_host: opts.maxBackupsHost,
      transitions_per_backup: Number(transitionsPerBackup.toFixed(2)),
      invocations_per_backup: Number(invocationsPerBackup.toFixed(2)),
      writes_per_backup: Number(writesPerBackup.toFixed(2)),
      write_requests_per_backup: Number((calls.writes / n).toFixed(2)),
      ddb_calls_per_backup: Number((calls.total / n).toFixed(2)),
      ddb_reads_per_backup: Number((calls.reads / n).toFixed(2)),
      authorizer_ddb_calls_per_backup: Number((calls.authorizer / n).toFixed(2)),
      wru_per_backup: Number(wruPerBackup.toFixed(2)),
      usd_per_1000: Number(usdPer1000.toFixed(4)),
      load_avg: loadavg().map((l) => Number(l.toFixed(2))),
    };
  } finally {
    await responder?.stop();
    reader.destroy();
    await plane.stop();
    await rm(home, { recursive: true, force: true });
  }
}

/** The state a history event entered (name and type), from the local shim's `localDetails`. */
export function enteredState(ev: {
  type: string;
  localDetails?: string;
}): { name: string; type: string } | undefined {
  if (ev.type !== 'StateEntered') return undefined;
  let details: { state?: { name?: unknown; type?: unknown } };
  try {
    details = JSON.parse(ev.localDetails ?? '{}');
  } catch {
    return { name: '', type: '' };
  }
  return { name: String(details.state?.name ?? ''), type: String(details.state?.type ?? '') };
}

/** DynamoDB calls of the backups between two readings, by caller (the functions' roles). */
export interface BackupCalls {
  /** Every call of the control plane's functions but the authorizer's. */
  total: number;
  reads: number;
  writes: number;
  writeItems: number;
  /** Write request units: a transaction's item counts twice. */
  writeUnits: number;
  /** The authorizer's calls (its answers cached 60 s per token, locally as in AWS). */
  authorizer: number;
  byCaller: Record<string, { total: number; ops: Record<string, number> }>;
  /** Callers left out: the bench's own (admin) reads, hosts. */
  excluded: string;
}

const WRITE_OPS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'TransactWriteItems', 'BatchWriteItem']);

/**
 * The backups' share of a counts difference: the bench samples and polls the counters table with
 * the admin key, so `admin` is left out; the authorizer is counted apart.
 */
export function callsOfBackups(diff: RequestCounts): BackupCalls {
  const out: BackupCalls = {
    total: 0,
    reads: 0,
    writes: 0,
    writeItems: 0,
    writeUnits: 0,
    authorizer: 0,
    byCaller: {},
    excluded: '',
  };
  const excluded: Record<string, number> = {};
  for (const [key, count] of Object.entries(diff.byCallerOperation ?? {})) {
    const space = key.lastIndexOf(' ');
    const [caller, op] = [key.slice(0, space), key.slice(space + 1)];
    if (caller === 'admin' || caller === 'host' || caller === 'unknown') {
      excluded[caller] = (excluded[caller] ?? 0) + count;
      continue;
    }
    const name = caller.replace(/^role:/, '').replace(/ServiceRole.*$|Role[0-9A-F]*$/, '');
    const entry = out.byCaller[name] ?? { total: 0, ops: {} };
    entry.total += count;
    entry.ops[op] = (entry.ops[op] ?? 0) + count;
    out.byCaller[name] = entry;
    if (/Authorizer/.test(caller)) {
      out.authorizer += count;
      continue;
    }
    out.total += count;
    if (WRITE_OPS.has(op)) out.writes += count;
    else out.reads += count;
  }
  for (const [key, items] of Object.entries(diff.writeItemsByCallerOperation ?? {})) {
    if (/^(admin|host|unknown) |Authorizer/.test(key)) continue;
    out.writeItems += items;
    // A transaction's items are billed twice (2 write request units each).
    out.writeUnits += key.endsWith(' TransactWriteItems') ? 2 * items : items;
  }
  out.excluded =
    Object.entries(excluded)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  return out;
}
