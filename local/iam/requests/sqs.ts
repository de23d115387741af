/**
 * What IAM checks for an SQS request, in the JSON protocol (`X-Amz-Target: AmazonSQS.<Op>`, as
 * the SDK v3 speaks it) or the query protocol (`Action=<Op>&QueueUrl=...`, form-encoded): the
 * action (a batch call is its single-message action) and the queue's ARN, from `QueueUrl`
 * (`.../<account>/<name>`) or `QueueName`.
 */
import { LOCAL_ACCOUNT } from '../../config.ts';
import type { Check } from '../evaluate.ts';

/** Batch calls IAM authorizes as the single-message action. */
const BATCH: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

/** Calls on no particular queue. */
const ACCOUNT_WIDE = new Set(['ListQueues']);

/** The queue name of a queue URL (`http://host/000000000000/lifeboat-host-3`). */
function queueNameOf(url: string): string | undefined {
  try {
    const parts = new URL(url).pathname.split('/').filter(Boolean);
    return parts.at(-1);
  } catch {
    return url.split('/').filter(Boolean).at(-1);
  }
}

/** The checks of one SQS call with its parameters (`QueueUrl`, `QueueName`). */
export function sqsChecks(operation: string, params: Record<string, unknown>, region: string): Check[] {
  const action = `sqs:${BATCH[operation] ?? operation}`;
  if (ACCOUNT_WIDE.has(operation)) return [{ action, resource: '*' }];
  const url = typeof params.QueueUrl === 'string' ? params.QueueUrl : undefined;
  const name = url ? queueNameOf(url) : typeof params.QueueName === 'string' ? params.QueueName : undefined;
  return [{ action, resource: name ? `arn:aws:sqs:${region}:${LOCAL_ACCOUNT}:${name}` : '*' }];
}

/** The operation and parameters of an SQS request, either protocol; undefined when neither. */
export function parseSqsRequest(
  target: string | undefined,
  contentType: string | undefined,
  body: string,
  query: URLSearchParams,
): { operation: string; params: Record<string, unknown> } | undefined {
  if (target?.startsWith('AmazonSQS.')) {
    let params: Record<string, unknown> = {};
    try {
      params = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return undefined;
    }
    return { operation: target.slice('AmazonSQS.'.length), params };
  }
  const form = contentType?.includes('x-www-form-urlencoded') ? new URLSearchParams(body) : query;
  const operation = form.get('Action') ?? query.get('Action');
  if (!operation) return undefined;
  return { operation, params: Object.fromEntries(form) };
}
