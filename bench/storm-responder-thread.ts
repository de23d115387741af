/**
 * The storm's hosts, played from a worker thread: the responder (storm-responder.ts) answers
 * 200 to 1,000 host queues, each with its own long poll, and those hosts are other machines in
 * a deployment. Run on the main event loop with the control plane, its SDK calls (signing,
 * parsing, sockets) took turns with the gateway, the Step Functions interpreter and the SQS
 * emulator it measures; here it has a thread of its own, and reports its own CPU apart
 * (`/proc/thread-self/stat`), so the control plane's CPU per backup leaves it out.
 */
import { readFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { LocalCredentials } from '#local/credentials.ts';
import { parseStat } from './control-cpu.ts';
import { startHostResponder } from './storm-responder.ts';

/** What the thread is started with (every field crosses a thread: plain data only). */
interface ThreadOptions {
  sqsEndpoint: string;
  sfnEndpoint: string;
  credentials: LocalCredentials;
  queues: [number, string][];
  pollSeconds: number;
}

/** The responder's figures, as the storm reads them. */
export interface ResponderFigures {
  /** Backup tasks received (each is answered at once). */
  backupsSeen: number;
  peak: number;
  peakPerHost: number;
  /** CPU seconds of the responder's thread so far. */
  cpuSeconds: number;
}

type Request = { id: number; kind: 'figures' | 'stop' };
type Reply = { id: number; figures: ResponderFigures };

/** The responder thread, seen from the storm. */
export interface ResponderThread {
  figures(): Promise<ResponderFigures>;
  /** Stops the responder (its polls and answers in flight) and ends the thread. */
  stop(): Promise<void>;
}

export async function startResponderThread(opts: {
  sqsEndpoint: string;
  sfnEndpoint: string;
  credentials: LocalCredentials;
  queues: ReadonlyMap<number, string>;
  pollSeconds: number;
}): Promise<ResponderThread> {
  const data: ThreadOptions = {
    sqsEndpoint: opts.sqsEndpoint,
    sfnEndpoint: opts.sfnEndpoint,
    credentials: { ...opts.credentials },
    queues: [...opts.queues],
    pollSeconds: opts.pollSeconds,
  };
  // The bench runs under `node --import tsx`: the worker inherits that loader with execArgv.
  const worker = new Worker(new URL(import.meta.url), { workerData: { stormResponder: data } });
  const waiting = new Map<number, { resolve: (f: ResponderFigures) => void; reject: (e: Error) => void }>();
  let failure: Error | undefined;
  worker.on('message', (reply: Reply) => {
    waiting.get(reply.id)?.resolve(reply.figures);
    waiting.delete(reply.id);
  });
  // A thread that fails or ends fails every question asked and every later one.
  const fail = (error: Error) => {
    failure ??= error;
    for (const { reject } of waiting.values()) reject(failure);
    waiting.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the hosts' responder thread ended (exit code ${code})`)));
  let next = 0;
  const ask = (kind: Request['kind']) =>
    new Promise<ResponderFigures>((resolve, reject) => {
      if (failure) return reject(failure);
      const id = next++;
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, kind } satisfies Request);
    });
  // The first answer says the thread runs (a loader or import failure rejects it).
  await ask('figures');
  return {
    figures: () => ask('figures'),
    async stop() {
      // A thread already gone has nothing to stop: the stack's own shutdown must still run.
      await ask('stop').catch(() => {});
      await worker.terminate();
    },
  };
}

/** This thread's CPU seconds (utime + stime of its own task). */
function threadCpuSeconds(): number {
  return parseStat(readFileSync('/proc/thread-self/stat', 'utf8'))?.self ?? 0;
}

if (!isMainThread && (workerData as { stormResponder?: ThreadOptions } | undefined)?.stormResponder) {
  const options = (workerData as { stormResponder: ThreadOptions }).stormResponder;
  const responder = startHostResponder({
    sqsEndpoint: options.sqsEndpoint,
    sfnEndpoint: options.sfnEndpoint,
    credentials: options.credentials,
    queues: new Map(options.queues),
    delayMs: 0,
    pollSeconds: options.pollSeconds,
  });
  const figures = (): ResponderFigures => ({
    backupsSeen: responder.tasks.filter((t) => t.kind === 'backup').length,
    peak: responder.peak(),
    peakPerHost: responder.peakPerHost(),
    cpuSeconds: threadCpuSeconds(),
  });
  parentPort?.on('message', async (request: Request) => {
    if (request.kind === 'stop') await responder.stop();
    parentPort?.postMessage({ id: request.id, figures: figures() } satisfies Reply);
  });
}
