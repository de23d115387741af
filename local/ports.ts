/** Port checks for local mode: fail early and clearly when another process holds a port. */
import { createServer } from 'node:net';

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
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
