/** Small helpers shared by the local HTTP servers (gateway, Step Functions shim, Lambda endpoint). */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** 1 MiB: the largest body the local API gateway and the Step Functions shim take. */
export const MIB = 1024 * 1024;

/** A request body over the reader's limit (answered 413, see {@link sendTooLarge}). */
export class PayloadTooLarge extends Error {
  override readonly name = 'PayloadTooLarge';
  constructor(readonly limit: number) {
    super(`the request body is larger than ${limit} bytes`);
  }
}

/**
 * The whole request body, at most `limit` bytes. A longer one (declared by Content-Length, or
 * found while reading) throws {@link PayloadTooLarge} at once: the rest is never read, so a
 * client on the machine cannot make a local server hold an unbounded body in memory.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLarge(limit);
  // Events rather than `for await`: leaving that loop early destroys the request, and with it
  // the socket the 413 must still be written to.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData).off('end', onEnd).off('error', done);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else {
        req.pause();
        done(new PayloadTooLarge(limit));
      }
    };
    const onEnd = () => done();
    req.on('data', onData).on('end', onEnd).on('error', done);
  });
}

/**
 * Answer 413 with `body` and close the connection once it is sent, without reading the rest of
 * the request (Node would otherwise drain it to keep the connection alive).
 */
export function sendTooLarge(
  req: IncomingMessage,
  res: ServerResponse,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  req.pause();
  res.once('finish', () => setImmediate(() => req.socket.destroy()));
  sendJson(res, 413, body, { ...headers, connection: 'close' });
}

/** Answer with a JSON document. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Listen on 127.0.0.1:`port` (0: any free port); resolves with the port. */
export async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}

/** Close a server, dropping idle keep-alive connections so it does not linger. */
export async function close(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
