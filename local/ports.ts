/** Port checks for local mode: fail early and clearly when another process holds a port. */
import { createServer, type Server } from 'node:net';

/** Resolves when nothing listens on 127.0.0.1:`port` nor 0.0.0.0:`port`; rejects naming the port otherwise. */
export async function assertPortFree(port: number, what: string): Promise<void> {
  for (const host of ['0.0.0.0', '127.0.0.1']) {
    await new Promise<void>((resolve, reject) => {
      const server = createServer();
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            err.code === 'EADDRINUSE'
              ? `port ${port} (${what}) is already in use by another process`
              : `cannot use port ${port} (${what}): ${err.message}`,
          ),
        ),
      );
      server.listen({ port, host, exclusive: true }, () => server.close(() => resolve()));
    });
  }
}

/** A port the OS reports free right now (for tests). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/**
 * `count` distinct ports the OS reports free right now (for tests). Every listener stays open
 * until all are chosen, so the OS cannot hand out the same port twice.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
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
