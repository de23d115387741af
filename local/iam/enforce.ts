/**
 * A signed request to one of local mode's endpoints, turned into the checks IAM makes for it
 * (local/iam/requests/*), and the answer AWS gives when one is refused: HTTP 400 with
 * `{ __type: 'AccessDeniedException', message }` in the JSON protocols (DynamoDB, SQS, Step
 * Functions), 403 with `x-amzn-errortype: AccessDeniedException` in the REST ones (Lambda,
 * Scheduler), and the query protocol's `<ErrorResponse>` for SQS query calls.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { sendJson } from '../http.ts';
import type { Check, Denial } from './evaluate.ts';
import { dynamodbChecks } from './requests/dynamodb.ts';
import { lambdaChecks } from './requests/lambda.ts';
import { schedulerChecks } from './requests/scheduler.ts';
import { parseSqsRequest, sqsChecks } from './requests/sqs.ts';
import { stepFunctionsChecks } from './requests/stepfunctions.ts';

/** The services local mode serves, by the endpoint that serves them. */
export type LocalService = 'dynamodb' | 'sqs' | 'states' | 'lambda' | 'scheduler';

/** A request as the endpoint received it. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

function jsonBody(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = text ? JSON.parse(text) : {};
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The checks of `request` to `service` in `region`. Undefined when the request is not one the
 * service understands (no target, a body that is not JSON): the service answers it with its own
 * error and changes nothing, so there is nothing to authorize.
 */
export function requestChecks(
  service: LocalService,
  request: ReceivedRequest,
  region: string,
): Check[] | undefined {
  const body = Buffer.from(request.body).toString('utf8');
  const url = new URL(request.url, 'http://localhost');
  const target = header(request.headers, 'x-amz-target');
  switch (service) {
    case 'dynamodb': {
      const operation = target?.startsWith('DynamoDB_') ? target.slice(target.indexOf('.') + 1) : undefined;
      const params = jsonBody(body);
      return operation && params ? dynamodbChecks(operation, params, region) : undefined;
    }
    case 'sqs': {
      const parsed = parseSqsRequest(target, header(request.headers, 'content-type'), body, url.searchParams);
      return parsed ? sqsChecks(parsed.operation, parsed.params, region) : undefined;
    }
    case 'states': {
      const operation = target?.startsWith('AWSStepFunctions.')
        ? target.slice('AWSStepFunctions.'.length)
        : undefined;
      const params = jsonBody(body);
      return operation && params ? stepFunctionsChecks(operation, params) : undefined;
    }
    case 'lambda':
      return lambdaChecks(request.method.toUpperCase(), url, region);
    case 'scheduler':
      return schedulerChecks(request.method.toUpperCase(), url, body, region);
  }
}

const escapeXml = (s: string) =>
  s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );

/** Answer a refused call as `service` does in AWS. */
export function sendAccessDenied(
  res: ServerResponse,
  service: LocalService,
  denial: Denial,
  request: ReceivedRequest,
): void {
  const type = 'AccessDeniedException';
  if (service === 'lambda' || service === 'scheduler') {
    const body =
      service === 'lambda' ? { Type: 'User', Message: denial.message } : { Message: denial.message };
    sendJson(res, 403, body, { 'x-amzn-errortype': type });
    return;
  }
  if (service === 'sqs' && !header(request.headers, 'x-amz-target')) {
    const xml = `<?xml version="1.0"?><ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>${escapeXml(denial.message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>`;
    res.writeHead(403, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
    return;
  }
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.0',
    'x-amzn-errortype': type,
  };
  sendJson(res, 400, { __type: type, message: denial.message }, headers);
}
