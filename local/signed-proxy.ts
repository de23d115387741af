/**
 * The loopback front of an emulator that sits behind a Unix socket (DynamoDB Local in its
 * network namespace, the SQS emulator): listens on 127.0.0.1 only, refuses every request not
 * signed with one of local mode's per-start keys (local/sigv4-check.ts) or, given the key ring,
 * not allowed by the signer's IAM policies (local/iam/), and forwards the others as they came
 * (Host header included: the SQS emulator names queue URLs after it).
 */
import { Agent, createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { LocalCredentials } from './credentials.ts';
import { close, listen, sendJson } from './http.ts';
import type { LocalService } from './iam/enforce.ts';
import type { LocalIam } from './iam/keyring.ts';
import type { RequestCounter } from './request-counts.ts';
import { accessKeyIdOf, readSignedRequest } from './sigv4-check.ts';

/** A running front. */
export interface SignedProxy {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 7.6.1) end at the proxy.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

const JSON_10 = { 'content-type': 'application/x-amz-json-1.0' };

/**
 * Serve 127.0.0.1:`port`, forwarding signed requests of at most `bodyLimit` bytes to the HTTP
 * server on `socket`. `name` names the service in errors.
 */
export async function startSignedProxy(opts: {
  name: string;
  /** The service behind, whose calls the key ring's policies are checked for. */
  service: LocalService;
  port: number;
  socket: string;
  credentials: LocalCredentials | LocalIam;
  bodyLimit: number;
  /** Counts each forwarded request (DynamoDB Local's front: by caller, table, operation). */
  counter?: RequestCounter;
}): Promise<SignedProxy> {
  const agent = new Agent({ keepAlive: true });
  const server = createServer(async (req, res) => {
    const body = await readSignedRequest(req, res, {
      limit: opts.bodyLimit,
      credentials: opts.credentials,
      service: opts.service,
      tooLarge: { body: (message) => ({ __type: 'PayloadTooLarge', message }), headers: JSON_10 },
    });
    if (!body) return;
    opts.counter?.record(accessKeyIdOf(req.headers), req.headers, body);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const upstream = request(
      {
        socketPath: opts.socket,
        agent,
        method,
        path: url,
        // The body goes whole, with its length, however the client framed it.
        headers: { ...forwardable(req.headers), 'content-length': String(body.length) },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, forwardable(answer.headers));
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('error', () => {
      if (res.headersSent) res.destroy();
      else
        sendJson(
          res,
          503,
          { __type: 'ServiceUnavailable', message: `${opts.name} is not answering` },
          { ...JSON_10, 'x-amzn-errortype': 'ServiceUnavailable' },
        );
    });
    // A client that goes away (an SQS long poll given up) ends the forwarded request too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.end(body);
  });
  const port = await listen(server, opts.port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      await close(server);
      agent.destroy();
    },
  };
}
