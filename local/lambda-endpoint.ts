/**
 * The Lambda Invoke API for local mode (`POST /2015-03-31/functions/{name}/invocations`), so
 * the SDK's LambdaClient in the handlers reaches the same in-process functions: `Event`
 * invocations answer 202 and run in the background, `RequestResponse` ones return the result
 * (a thrown error as Lambda reports it: 200 with `X-Amz-Function-Error: Unhandled`).
 */
import { createServer, type Server } from 'node:http';
import type { LocalCredentials } from './credentials.ts';
import { FunctionError, findFunction, type Invoker } from './functions.ts';
import { close, listen, MIB, sendJson } from './http.ts';
import type { LocalIam } from './iam/keyring.ts';
import { readSignedRequest } from './sigv4-check.ts';

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/**
 * Runs `Event` invocations of one function one after the other, as a function with reserved
 * concurrency 1 would (the dispatcher relies on running one at a time).
 */
export class EventQueue {
  private readonly tails = new Map<string, Promise<void>>();
  constructor(
    private readonly invoke: Invoker,
    private readonly log: (entry: Record<string, unknown>) => void = () => {},
  ) {}

  /** Queue an asynchronous invocation; errors are logged, as Lambda does. */
  enqueue(id: string, event: unknown): Promise<void> {
    const previous = this.tails.get(id) ?? Promise.resolve();
    const next = previous.then(async () => {
      try {
        await this.invoke(id, event);
      } catch (err) {
        const e = err instanceof FunctionError ? err.toPayload() : { errorMessage: String(err) };
        this.log({ level: 'error', msg: 'async invocation failed', function: id, ...e });
      }
    });
    this.tails.set(id, next);
    void next.then(() => {
      if (this.tails.get(id) === next) this.tails.delete(id);
    });
    return next;
  }

  /** Resolves when every queued invocation has run (shutdown, tests). */
  async drain(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}

/** Lambda's own limit on a synchronous invocation's payload. */
const BODY_LIMIT = 6 * MIB;

/**
 * Serve the Invoke API on 127.0.0.1:`port`. Requests not signed with `credentials` (local
 * mode's per-start key, or one of the key ring's) are refused with a 403, and with the key ring
 * an invocation the signer's policies do not allow (`lambda:InvokeFunction` on the function).
 */
export async function startLambdaEndpoint(opts: {
  port: number;
  invoke: Invoker;
  events: EventQueue;
  credentials: LocalCredentials | LocalIam;
}): Promise<{ server: Server; port: number; endpoint: string; stop(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const body = await readSignedRequest(req, res, {
      limit: BODY_LIMIT,
      credentials: opts.credentials,
      service: 'lambda',
      tooLarge: {
        body: (message) => ({ Type: 'User', message }),
        headers: { 'x-amzn-errortype': 'RequestTooLargeException' },
      },
    });
    if (!body) return;
    const match = INVOKE_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (req.method !== 'POST' || !match?.[1]) {
      sendJson(
        res,
        404,
        { Type: 'User', message: 'unsupported Lambda API call' },
        {
          'x-amzn-errortype': 'ResourceNotFoundException',
        },
      );
      return;
    }
    const name = decodeURIComponent(match[1]);
    const spec = findFunction(name);
    if (!spec) {
      sendJson(
        res,
        404,
        { Type: 'User', message: `Function not found: ${name}` },
        {
          'x-amzn-errortype': 'ResourceNotFoundException',
        },
      );
      return;
    }
    let event: unknown = {};
    if (body.length) {
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch {
        sendJson(
          res,
          400,
          { Type: 'User', message: 'Could not parse request body into json' },
          {
            'x-amzn-errortype': 'InvalidRequestContentException',
          },
        );
        return;
      }
    }
    const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (type === 'DryRun') {
      res.writeHead(204).end();
      return;
    }
    if (type === 'Event') {
      void opts.events.enqueue(spec.id, event);
      res.writeHead(202, { 'content-length': '0' }).end();
      return;
    }
    try {
      const result = await opts.invoke(spec.id, event);
      sendJson(res, 200, result ?? null, { 'x-amz-executed-version': '$LATEST' });
    } catch (err) {
      const payload =
        err instanceof FunctionError ? err.toPayload() : { errorType: 'Error', errorMessage: String(err) };
      sendJson(res, 200, payload, {
        'x-amz-function-error': 'Unhandled',
        'x-amz-executed-version': '$LATEST',
      });
    }
  });
  const port = await listen(server, opts.port);
  return { server, port, endpoint: `http://127.0.0.1:${port}`, stop: () => close(server) };
}
