/**
 * The test responder's side of local mode, shared by the local e2e suites: API calls with the
 * admin token, the host queue read as the runner reads it, and waiting for an execution's end.
 */
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

export interface Connection {
  endpoint: string;
  token: string;
}

/** One API call; `auth: false` sends no token. */
export async function apiCall(conn: Connection, method: string, path: string, body?: unknown, auth = true) {
  const res = await fetch(`${conn.endpoint}${path}`, {
    method,
    headers: {
      ...(auth && { authorization: `Bearer ${conn.token}` }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Long-polls the host queue for the next task body and deletes it (the runner's side). */
export async function receiveTask(sqs: SQSClient, queueUrl: string, timeoutMs = 30_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 2 }));
    const message = out.Messages?.[0];
    if (message?.Body) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
      return JSON.parse(message.Body);
    }
  }
  throw new Error(`no task on ${queueUrl} within ${timeoutMs} ms`);
}

/** Polls an execution until it is neither QUEUED nor RUNNING; answers it. */
export async function executionEnded(conn: Connection, id: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await apiCall(conn, 'GET', `/executions/${id}`);
    if (!['QUEUED', 'RUNNING'].includes(body.state)) return body;
    if (Date.now() > deadline) throw new Error(`execution ${id} still ${body.state}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
