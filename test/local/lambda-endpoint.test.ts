/** The local Lambda Invoke API, through the SDK's own LambdaClient as the handlers use it. */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newLocalCredentials } from '#local/credentials.ts';
import { FunctionError } from '#local/functions.ts';
import { EventQueue, startLambdaEndpoint } from '#local/lambda-endpoint.ts';

const calls: { id: string; event: unknown }[] = [];
let events: EventQueue;
let client: LambdaClient;
let stop: () => Promise<void>;
let concurrent = 0;
let maxConcurrent = 0;

beforeAll(async () => {
  const invoke = async (id: string, event: unknown) => {
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    await new Promise((r) => setTimeout(r, 20));
    concurrent--;
    calls.push({ id, event });
    if ((event as { fail?: boolean }).fail) throw new FunctionError('Conflict', 'VM 3 is locked');
    return { answered: id };
  };
  events = new EventQueue(invoke);
  const credentials = newLocalCredentials();
  const endpoint = await startLambdaEndpoint({ port: 0, invoke, events, credentials });
  stop = endpoint.stop;
  client = new LambdaClient({ endpoint: endpoint.endpoint, region: 'us-east-1', credentials });
});

afterAll(async () => {
  client.destroy();
  await stop();
});

const decode = (payload?: Uint8Array) => JSON.parse(new TextDecoder().decode(payload));

describe('local Lambda endpoint', () => {
  it('RequestResponse runs the function by its local name and returns its result', async () => {
    const out = await client.send(
      new InvokeCommand({ FunctionName: 'lifeboat-Dispatcher', Payload: JSON.stringify({ a: 1 }) }),
    );
    expect(out.StatusCode).toBe(200);
    expect(out.FunctionError).toBeUndefined();
    expect(decode(out.Payload)).toEqual({ answered: 'Dispatcher' });
    expect(calls.at(-1)).toEqual({ id: 'Dispatcher', event: { a: 1 } });
  });

  it('reports a thrown error as Lambda does: FunctionError Unhandled and {errorType, errorMessage}', async () => {
    const out = await client.send(
      new InvokeCommand({ FunctionName: 'lifeboat-Release', Payload: JSON.stringify({ fail: true }) }),
    );
    expect(out.FunctionError).toBe('Unhandled');
    expect(decode(out.Payload)).toEqual({ errorType: 'Conflict', errorMessage: 'VM 3 is locked' });
  });

  it('Event answers 202 at once and runs the invocations of one function one at a time', async () => {
    calls.length = 0;
    maxConcurrent = 0;
    const outs = await Promise.all(
      [1, 2, 3].map((n) =>
        client.send(
          new InvokeCommand({
            FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:lifeboat-Dispatcher',
            InvocationType: 'Event',
            Payload: JSON.stringify({ n }),
          }),
        ),
      ),
    );
    expect(outs.map((o) => o.StatusCode)).toEqual([202, 202, 202]);
    await events.drain();
    expect(calls.map((c) => (c.event as { n: number }).n).sort()).toEqual([1, 2, 3]);
    expect(maxConcurrent).toBe(1);
  });

  it('answers ResourceNotFoundException for a function not in the manifest', async () => {
    await expect(client.send(new InvokeCommand({ FunctionName: 'lifeboat-Nope' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });
});
