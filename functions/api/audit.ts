/**
 * The audit trail's writer: after the route answered a change request (any method but GET),
 * one record of who, when, which route, which object, the outcome and the source address
 * (core/audit.ts). Refusals (4xx, 5xx) are recorded too: a refused change is an event. Not
 * recorded: reads, requests that named no route (nothing could change), and requests whose
 * caller is unknown (401): anyone can send those, so recording them would let an anonymous
 * client fill the table; in AWS the authorizer refuses them before the API function anyway,
 * and API Gateway's access log has them.
 *
 * A failed write does not fail the request (logged, not fail-closed): when it runs the change
 * is already made, so answering 500 would tell the client a change failed that did not, and
 * invite a retry that makes it twice. The whole record goes to the log at level error instead
 * (it holds nothing secret), so the trail survives in the function's log and an alarm can
 * watch for the message.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { auditObject } from '#core/audit.ts';
import type { User } from '#core/model.ts';
import { log } from '#platform/log.ts';
import { auditRecord, writeAudit } from '../repo/audit.ts';

/** What the handler learnt of a request before it answered (filled as it goes). */
export interface Seen {
  user?: User;
  route?: string;
  params?: Record<string, string>;
  /** The route's reply body (a create's new id); absent for errors. */
  body?: unknown;
}

/** The log message of a record that could not be written (an alarm can match it). */
export const AUDIT_NOT_WRITTEN = 'audit record not written';

/** Whether a request is a change the trail records. */
export function isAudited(method: string, seen: Seen): boolean {
  return method.toUpperCase() !== 'GET' && seen.user !== undefined && seen.route !== undefined;
}

/** Records the change request `event` answered with `response`; never throws. */
export async function recordChange(
  event: Pick<APIGatewayProxyEventV2, 'requestContext'>,
  seen: Seen,
  response: APIGatewayProxyStructuredResultV2,
): Promise<void> {
  const method = event.requestContext?.http?.method ?? '';
  if (!isAudited(method, seen) || !seen.user || !seen.route) return;
  const status = response.statusCode ?? 200;
  let record: ReturnType<typeof auditRecord> | undefined;
  try {
    const error = status >= 400 ? errorName(response) : undefined;
    const object = auditObject(seen.route, seen.params ?? {}, { statusCode: status, body: seen.body });
    record = auditRecord({
      user: seen.user.name,
      method: method.toUpperCase(),
      route: seen.route,
      ...(object ? { object } : {}),
      status,
      ...(error ? { error } : {}),
      ...(event.requestContext?.http?.sourceIp ? { sourceIp: event.requestContext.http.sourceIp } : {}),
      ...(event.requestContext?.requestId ? { requestId: event.requestContext.requestId } : {}),
    });
    await writeAudit(record);
  } catch (err) {
    log('error', AUDIT_NOT_WRITTEN, {
      audit: record,
      route: seen.route,
      user: seen.user.name,
      error: err instanceof Error ? err.name : typeof err,
      detail: err instanceof Error ? err.message : undefined,
    });
  }
}

/** The `error` name of an error answer (`Forbidden`), never its message. */
function errorName(response: APIGatewayProxyStructuredResultV2): string | undefined {
  try {
    const name = (JSON.parse(String(response.body ?? '')) as { error?: unknown }).error;
    return typeof name === 'string' && /^\w{1,64}$/.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}
