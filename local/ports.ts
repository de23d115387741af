/** Port checks for local mode: fail early and clearly when another process holds a port. */
import { readFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';

/** A listener on `host`:`port` (exclusive), or why there can be none. */
function listenOn(port: number, host: string): Promise<Server | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

/** Resolves when nothing listens on 127.0.0.1:`port` nor 0.0.0.0:`port`; rejects naming the port otherwise. */
export async function assertPortFree(port: number, what: string): Promise<void> {
  for (const host of ['0.0.0.0', '127.0.0.1']) {
    const listener = await listenOn(port, host);
    if (listener instanceof Server) {
      await close(listener);
      continue;
    }
    throw new Error(
      listener.code === 'EADDRINUSE'
        ? `port ${port} (${what}) is already in use by another process`
        : `cannot use port ${port} (${what}): ${listener.message}`,
    );
  }
}

/** One port free right now, below the ephemeral range (for tests; see {@link freePorts}). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/** The first port of Linux's ephemeral range (outgoing connections' local ports); 32768 elsewhere. */
export function ephemeralLow(
  read: () => string = () => readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'),
): number {
  try {
    const low = Number(read().trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * `count` distinct ports free right now (for tests and benchmarks), drawn at random below the
 * ephemeral range: a port the OS hands out itself (`listen(0)`) comes from that range, where
 * any outgoing connection made before the service binds it (a Lambda worker's first call, an ssh)
 * may take it as its local port, and local mode then fails with EADDRINUSE. Below it only another
 * listener can, and every listener stays open until all are chosen, so none is chosen twice.
 */
export async function freePorts(count: number): Promise<number[]> {
  const high = ephemeralLow() - 1;
  const low = Math.max(1024, high - 20_000);
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let tries = 0; ports.length < count; tries++) {
      if (tries > 1000) throw new Error(`no ${count} free ports between ${low} and ${high}`);
      const port = low + Math.floor(Math.random() * (high - low + 1));
      if (ports.includes(port)) continue;
      const listener = await listenOn(port, '127.0.0.1');
      if (!(listener instanceof Server)) continue;
      servers.push(listener);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** One free port for each local-mode service, all distinct (for tests and benchmarks). */
export async function freeStackPorts(): Promise<{
  api: number;
  dynamodb: number;
  sqs: number;
  stepfunctions: number;
  lambda: number;
  sessions: number;
}> {
  const [api, dynamodb, sqs, stepfunctions, lambda, sessions] = (await freePorts(6)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { api, dynamodb, sqs, stepfunctions, lambda, sessions };
}
