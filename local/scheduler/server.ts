/**
 * The EventBridge Scheduler API of local mode, REST-JSON as the SDK's SchedulerClient speaks it:
 * CreateSchedule (`POST /schedules/{Name}`), GetSchedule (`GET`), DeleteSchedule (`DELETE`), with
 * `groupName` in the query for the last two. Errors are `{ Message }` with `x-amzn-errortype`.
 * Only requests signed with local mode's per-start key are served; the schedules fire through
 * {@link ScheduleStore}.
 */
import { createServer, type Server } from 'node:http';
import { z } from 'zod';
import { LOCAL_ACCOUNT } from '../config.ts';
import type { LocalCredentials } from '../credentials.ts';
import { close, listen, MIB, sendJson } from '../http.ts';
import type { LocalIam } from '../iam/keyring.ts';
import { readSignedRequest } from '../sigv4-check.ts';
import { ExpressionError } from './expression.ts';
import { type ScheduleStore, type StoredSchedule, timingOf } from './schedules.ts';

const SCHEDULE_PATH = /^\/schedules\/([^/]+)$/;
const NAME = /^[0-9a-zA-Z-_.]{1,64}$/;

class SchedulerError extends Error {
  constructor(
    readonly type: 'ValidationException' | 'ConflictException' | 'ResourceNotFoundException',
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const invalid = (message: string) => new SchedulerError('ValidationException', 400, message);

/** A timestamp as the SDK sends it (epoch seconds) or an ISO string; epoch ms. */
const Timestamp = z.union([
  z.number().transform((s) => Math.round(s * 1000)),
  z.iso.datetime({ offset: true }).transform(Date.parse),
]);

/** The body of CreateSchedule (the Name is in the path). */
const CreateBody = z.object({
  GroupName: z.string().min(1).max(64).optional(),
  ScheduleExpression: z.string().min(1).max(256),
  ScheduleExpressionTimezone: z.string().min(1).max(50).optional(),
  StartDate: Timestamp.optional(),
  EndDate: Timestamp.optional(),
  Description: z.string().max(512).optional(),
  State: z.enum(['ENABLED', 'DISABLED']).optional(),
  ActionAfterCompletion: z.enum(['NONE', 'DELETE']).optional(),
  FlexibleTimeWindow: z.object({
    Mode: z.enum(['OFF', 'FLEXIBLE']),
    MaximumWindowInMinutes: z.number().int().min(1).max(1440).optional(),
  }),
  Target: z.looseObject({
    Arn: z.string().min(1).max(1600),
    RoleArn: z.string().min(1).max(1600),
    Input: z.string().min(1).max(8192).optional(),
  }),
  ClientToken: z.string().optional(),
  KmsKeyArn: z.string().optional(),
});

/** The schedule groups that exist: the default one and the stack's (infra/scheduler.ts). */
const DEFAULT_GROUPS = ['default', 'lifeboat'];

const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);

/** What GetSchedule answers for `s`. */
function describe(s: StoredSchedule, region: string) {
  return {
    Arn: scheduleArn(region, s.GroupName, s.Name),
    Name: s.Name,
    GroupName: s.GroupName,
    ScheduleExpression: s.ScheduleExpression,
    ScheduleExpressionTimezone: s.ScheduleExpressionTimezone,
    StartDate: seconds(s.StartDate),
    EndDate: seconds(s.EndDate),
    Description: s.Description,
    State: s.State,
    ActionAfterCompletion: s.ActionAfterCompletion,
    FlexibleTimeWindow: s.FlexibleTimeWindow,
    Target: s.Target,
    CreationDate: seconds(s.CreationDate),
    LastModificationDate: seconds(s.LastModificationDate),
  };
}

/** The ARN of a schedule. */
export function scheduleArn(region: string, group: string, name: string): string {
  return `arn:aws:scheduler:${region}:${LOCAL_ACCOUNT}:schedule/${group}/${name}`;
}

/** Run one API call; returns the JSON answer. */
async function handle(
  store: ScheduleStore,
  region: string,
  groups: readonly string[],
  method: string,
  url: URL,
  body: Buffer,
): Promise<unknown> {
  const match = SCHEDULE_PATH.exec(url.pathname);
  if (!match?.[1])
    throw new SchedulerError('ResourceNotFoundException', 404, 'unsupported Scheduler API call');
  let name: string;
  try {
    name = decodeURIComponent(match[1]);
  } catch {
    throw invalid('the schedule name is not validly percent-encoded');
  }
  if (!NAME.test(name)) throw invalid(`Name must match ${NAME.source}`);
  const queryGroup = url.searchParams.get('groupName') ?? 'default';
  const notFound = (group: string) =>
    new SchedulerError(
      'ResourceNotFoundException',
      404,
      `Schedule ${name} does not exist in group ${group}.`,
    );

  if (method === 'GET') {
    const s = store.get(queryGroup, name);
    if (!s) throw notFound(queryGroup);
    return describe(s, region);
  }
  if (method === 'DELETE') {
    if (!(await store.delete(queryGroup, name))) throw notFound(queryGroup);
    return {};
  }
  if (method !== 'POST')
    throw new SchedulerError('ResourceNotFoundException', 404, 'unsupported Scheduler API call');

  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8') || '{}');
  } catch {
    throw invalid('the request body is not JSON');
  }
  const parsed = CreateBody.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(`${issue?.path.join('.') || '(body)'}: ${issue?.message}`);
  }
  const p = parsed.data;
  const group = p.GroupName ?? 'default';
  if (!groups.includes(group)) {
    throw new SchedulerError('ResourceNotFoundException', 404, `Schedule group ${group} does not exist.`);
  }
  if (store.get(group, name))
    throw new SchedulerError('ConflictException', 409, `Schedule ${name} already exists.`);
  if (p.StartDate !== undefined && p.EndDate !== undefined && p.EndDate <= p.StartDate) {
    throw invalid('The EndDate must be after the StartDate.');
  }
  const now = Date.now();
  const schedule: StoredSchedule = {
    Name: name,
    GroupName: group,
    ScheduleExpression: p.ScheduleExpression,
    ScheduleExpressionTimezone: p.ScheduleExpressionTimezone ?? 'UTC',
    StartDate: p.StartDate,
    EndDate: p.EndDate,
    Description: p.Description,
    State: p.State ?? 'ENABLED',
    ActionAfterCompletion: p.ActionAfterCompletion ?? 'NONE',
    FlexibleTimeWindow: p.FlexibleTimeWindow,
    Target: p.Target,
    CreationDate: now,
    LastModificationDate: now,
    localSeconds: false,
  };
  try {
    timingOf(schedule);
  } catch (err) {
    if (err instanceof ExpressionError) throw invalid(err.message);
    throw err;
  }
  await store.put(schedule);
  return { ScheduleArn: scheduleArn(region, group, name) };
}

/** Schedule bodies are small (an Input is at most 8 KiB). */
const BODY_LIMIT = MIB;

/**
 * Serve the Scheduler API on 127.0.0.1:`port` (0: any free port). Requests not signed with
 * `credentials` (local mode's per-start key) are refused with a 403 and change nothing.
 */
export async function startSchedulerServer(opts: {
  port: number;
  store: ScheduleStore;
  /** One key, or the key ring whose principals' policies are enforced (iam:PassRole included). */
  credentials: LocalCredentials | LocalIam;
  region: string;
  groups?: readonly string[];
}): Promise<{ server: Server; port: number; endpoint: string; stop(): Promise<void> }> {
  const groups = opts.groups ?? DEFAULT_GROUPS;
  const server = createServer(async (req, res) => {
    const body = await readSignedRequest(req, res, {
      limit: BODY_LIMIT,
      credentials: opts.credentials,
      service: 'scheduler',
      tooLarge: {
        body: (message) => ({ Message: message }),
        headers: { 'x-amzn-errortype': 'ValidationException' },
      },
    });
    if (!body) return;
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      sendJson(res, 200, await handle(opts.store, opts.region, groups, req.method ?? 'GET', url, body));
    } catch (err) {
      if (err instanceof SchedulerError) {
        sendJson(res, err.status, { Message: err.message }, { 'x-amzn-errortype': err.type });
        return;
      }
      sendJson(res, 500, { Message: 'internal error' }, { 'x-amzn-errortype': 'InternalServerException' });
    }
  });
  const port = await listen(server, opts.port);
  return { server, port, endpoint: `http://127.0.0.1:${port}`, stop: () => close(server) };
}
