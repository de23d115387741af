/**
 * A minimal Step Functions endpoint (AWS JSON 1.0) answering StartExecution, DescribeExecution
 * and StopExecution (the execution ABORTED, as AWS answers a stop of a running one), for tests of the dispatcher and its sweep without a state machine
 * interpreter. Records every start; can be told to fail, and what status an execution has.
 */
import { createServer, type Server } from 'node:http';
import { resetClients } from '#platform/aws.ts';

/** One recorded StartExecution call. */
export interface StartCall {
  stateMachineArn: string;
  name: string;
  input: unknown;
}

/**
 * A running fake. Set `failWith` to answer the next calls with that error type; set an
 * execution's status (`ABORTED`, `FAILED`...) by its ARN in `statuses` (default RUNNING).
 */
export interface FakeSfn {
  calls: StartCall[];
  failWith: string | null;
  statuses: Map<string, string>;
  /** The ARNs StopExecution was called with, in order. */
  stopped: string[];
  /** Runs before a StartExecution is answered (a test's way into the dispatcher's start). */
  beforeStart?: (name: string) => Promise<void>;
  stop(): Promise<void>;
}

/** Start the fake on a free port and point AWS_ENDPOINT_URL_SFN at it. */
export async function startFakeSfn(): Promise<FakeSfn> {
  const fake: FakeSfn = {
    calls: [],
    failWith: null,
    statuses: new Map(),
    stopped: [],
    stop: async () => {},
  };
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      const body = JSON.parse(text || '{}') as {
        stateMachineArn: string;
        name: string;
        input: string;
        executionArn?: string;
      };
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (fake.failWith) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: fake.failWith, message: `fake ${fake.failWith}` }));
        return;
      }
      if (String(req.headers['x-amz-target']).endsWith('.StopExecution')) {
        const arn = body.executionArn ?? '';
        fake.stopped.push(arn);
        // A running execution ends ABORTED; one that already ended keeps its status.
        if ((fake.statuses.get(arn) ?? 'RUNNING') === 'RUNNING') fake.statuses.set(arn, 'ABORTED');
        res.end(JSON.stringify({ stopDate: Date.now() / 1000 }));
        return;
      }
      if (String(req.headers['x-amz-target']).endsWith('.DescribeExecution')) {
        const status = fake.statuses.get(body.executionArn ?? '') ?? 'RUNNING';
        const stopped = status === 'RUNNING' ? {} : { stopDate: Date.now() / 1000 };
        res.end(JSON.stringify({ executionArn: body.executionArn, status, startDate: 0, ...stopped }));
        return;
      }
      fake.calls.push({
        stateMachineArn: body.stateMachineArn,
        name: body.name,
        input: JSON.parse(body.input),
      });
      const executionArn = `${body.stateMachineArn.replace(':stateMachine:', ':execution:')}:${body.name}`;
      const answer = () => res.end(JSON.stringify({ executionArn, startDate: Date.now() / 1000 }));
      if (fake.beforeStart) void fake.beforeStart(body.name).then(answer, answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.env.AWS_ENDPOINT_URL_SFN = `http://127.0.0.1:${port}`;
  resetClients();
  fake.stop = () => new Promise((resolve) => server.close(() => resolve()));
  return fake;
}
