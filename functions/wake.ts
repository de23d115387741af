/**
 * Wakes the dispatcher (an asynchronous Lambda Invoke). Best effort: the dispatcher also runs
 * every minute, so a failed wake only delays an operation; it never fails the caller.
 */
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { lambdaClient } from '#platform/aws.ts';
import { log } from '#platform/log.ts';

/** Invoke DISPATCHER_FUNCTION_NAME with InvocationType Event; logs and returns false on failure. */
export async function wakeDispatcher(reason: string): Promise<boolean> {
  const name = process.env.DISPATCHER_FUNCTION_NAME;
  if (!name) {
    log('warn', 'dispatcher not woken: DISPATCHER_FUNCTION_NAME is not set', { reason });
    return false;
  }
  try {
    await lambdaClient().send(
      new InvokeCommand({
        FunctionName: name,
        InvocationType: 'Event',
        Payload: new TextEncoder().encode(JSON.stringify({ reason })),
      }),
    );
    return true;
  } catch (err) {
    log('warn', 'dispatcher not woken', { reason, error: err instanceof Error ? err.name : String(err) });
    return false;
  }
}
