/**
 * The Step Functions API over HTTP, AWS JSON 1.0 protocol: `POST /` with
 * `X-Amz-Target: AWSStepFunctions.<Operation>`, errors as `{ __type, message }` with status 400.
 * Enough for the SDK's SFNClient: executions, task tokens, state machine listing.
 */
import { createServer, type Server } from 'node:http';
import type { LocalCredentials } from '../credentials.ts';
import { close, listen, MIB, sendJson } from '../http.ts';
import type { LocalIam } from '../iam/keyring.ts';
import { readSignedRequest } from '../sigv4-check.ts';
import { SfnApiError } from './errors.ts';
import type { ExecutionRecord, LocalStepFunctions } from './runtime.ts';
import type { TaskTokens } from './task-tokens.ts';

const JSON_10 = { 'content-type': 'application/x-amz-json-1.0' };

type Params = Record<string, unknown>;
type Operation = (params: Params) => unknown;

// The SDK reads timestamps of this protocol as epoch seconds.
const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);

function summary(e: ExecutionRecord) {
  return {
    executionArn: e.executionArn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: seconds(e.startDate),
    stopDate: seconds(e.stopDate),
  };
}

function str(params: Params, key: string, required: true): string;
function str(params: Params, key: string, required?: false): string | undefined;
function str(params: Params, key: string, required = false): string | undefined {
  const value = params[key];
  if (value === undefined || value === null) {
    if (required) throw new SfnApiError('ValidationException', `${key} is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw new SfnApiError('ValidationException', `${key} must be a string`);
  return value;
}

/** The operations by name. */
export function operations(sfn: LocalStepFunctions, tokens: TaskTokens): Record<string, Operation> {
  return {
    StartExecution: (p) => {
      const e = sfn.start(str(p, 'stateMachineArn', true), str(p, 'name'), str(p, 'input'));
      return { executionArn: e.executionArn, startDate: seconds(e.startDate) };
    },
    DescribeExecution: (p) => {
      const e = sfn.describe(str(p, 'executionArn', true));
      return { ...summary(e), input: e.input, output: e.output, error: e.error, cause: e.cause };
    },
    StopExecution: (p) => {
      const e = sfn.stop(str(p, 'executionArn', true), str(p, 'error'), str(p, 'cause'));
      return { stopDate: seconds(e.stopDate ?? Date.now()) };
    },
    ListExecutions: (p) => {
      const all = sfn.list(str(p, 'stateMachineArn', true), str(p, 'statusFilter'));
      const max = typeof p.maxResults === 'number' && p.maxResults > 0 ? p.maxResults : 100;
      const start = Number(str(p, 'nextToken') ?? 0);
      const page = all.slice(start, start + max);
      const next = start + max < all.length ? String(start + max) : undefined;
      return { executions: page.map(summary), nextToken: next };
    },
    GetExecutionHistory: (p) => {
      const e = sfn.describe(str(p, 'executionArn', true));
      const events = p.reverseOrder === true ? [...e.events].reverse() : e.events;
      return {
        events: events.map((ev) => ({
          id: ev.id,
          previousEventId: ev.id - 1,
          timestamp: seconds(ev.timestamp),
          type: ev.type,
          // Not AWS's per-type detail fields: the interpreter's own event, readable as JSON.
          localDetails: JSON.stringify(ev.details),
        })),
      };
    },
    ListStateMachines: () => ({
      stateMachines: sfn.listMachines().map((m) => ({
        stateMachineArn: m.arn,
        name: m.name,
        type: 'STANDARD',
        creationDate: 0,
      })),
    }),
    DescribeStateMachine: (p) => {
      const arn = str(p, 'stateMachineArn', true);
      const m = sfn.listMachines().find((x) => x.arn === arn);
      if (!m) throw new SfnApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
      return {
        stateMachineArn: m.arn,
        name: m.name,
        status: 'ACTIVE',
        definition: JSON.stringify(m.definition),
        roleArn: 'arn:aws:iam::000000000000:role/lifeboat-local',
        type: 'STANDARD',
        creationDate: 0,
      };
    },
    SendTaskSuccess: (p) => {
      tokens.succeed(str(p, 'taskToken', true), str(p, 'output', true));
      return {};
    },
    SendTaskFailure: (p) => {
      tokens.failure(str(p, 'taskToken', true), str(p, 'error'), str(p, 'cause'));
      return {};
    },
    SendTaskHeartbeat: (p) => {
      tokens.heartbeat(str(p, 'taskToken', true));
      return {};
    },
  };
}

/** An execution input is at most 256 KiB in AWS; with the request around it, 1 MiB is plenty. */
const BODY_LIMIT = MIB;

/**
 * Serve the shim on 127.0.0.1:`port`; resolves with the server and the port it got. Requests
 * not signed with `credentials` (local mode's per-start key, or one of the key ring's) are
 * refused with a 403, and with the key ring a call the signer's policies do not allow with
 * AccessDeniedException.
 */
export async function startStepFunctionsServer(
  sfn: LocalStepFunctions,
  tokens: TaskTokens,
  port: number,
  credentials: LocalCredentials | LocalIam,
): Promise<{ server: Server; port: number; endpoint: string; stop(): Promise<void> }> {
  const ops = operations(sfn, tokens);
  const server = createServer(async (req, res) => {
    try {
      const body = await readSignedRequest(req, res, {
        limit: BODY_LIMIT,
        credentials,
        service: 'states',
        tooLarge: { body: (message) => ({ __type: 'PayloadTooLarge', message }), headers: JSON_10 },
      });
      if (!body) return;
      const target = String(req.headers['x-amz-target'] ?? '');
      const [service, name] = target.split('.');
      const op = service === 'AWSStepFunctions' && name ? ops[name] : undefined;
      if (req.method !== 'POST' || !op) {
        throw new SfnApiError('UnknownOperationException', `unsupported operation ${target || '(none)'}`);
      }
      const raw = body.toString('utf8');
      let params: Params;
      try {
        params = raw ? JSON.parse(raw) : {};
      } catch {
        throw new SfnApiError('SerializationException', 'request body is not JSON');
      }
      sendJson(res, 200, op(params) ?? {}, JSON_10);
    } catch (err) {
      if (err instanceof SfnApiError) {
        sendJson(res, 400, { __type: err.type, message: err.message }, JSON_10);
      } else {
        sendJson(res, 500, { __type: 'InternalFailure', message: 'internal error' }, JSON_10);
        console.error(JSON.stringify({ level: 'error', msg: 'stepfunctions shim', error: String(err) }));
      }
    }
  });
  const actual = await listen(server, port);
  return { server, port: actual, endpoint: `http://127.0.0.1:${actual}`, stop: () => close(server) };
}
