/**
 * A minimal Step Functions endpoint (AWS JSON 1.0) answering StartExecution, for tests of the
 * dispatcher without a state machine interpreter. Records every call; can be told to fail.
 */
import { createServer, type Server } from 'node:http';
import { resetClients } from '#functions/aws.ts';

/** One recorded StartExecution call. */
export interface StartCall {
  stateMachineArn: string;
  name: string;
  input: unknown;
}

/** A running fake. Set `failWith` to answer the next calls with that error type. */
export interface FakeSfn {
  calls: StartCall[];
  failWith: string | null;
  stop(): Promise<void>;
}

/** Start the fake on a free port and point AWS_ENDPOINT_URL_SFN at it. */
export async function startFakeSfn(): Promise<FakeSfn> {
  const fake: FakeSfn = { calls: [], failWith: null, stop: async () => {} };
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => {
      const body = JSON.parse(text || '{}') as { stateMachineArn: string; name: string; input: string };
      res.setHeader('content-type', 'application/x-amz-json-1.0');
      if (fake.failWith) {
        res.statusCode = 400;
        res.end(JSON.stringify({ __type: fake.failWith, message: `fake ${fake.failWith}` }));
        return;
      }
      fake.calls.push({
        stateMachineArn: body.stateMachineArn,
        name: body.name,
        input: JSON.parse(body.input),
      });
      const executionArn = `${body.stateMachineArn.replace(':stateMachine:', ':execution:')}:${body.name}`;
      res.end(JSON.stringify({ executionArn, startDate: Date.now() / 1000 }));
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
