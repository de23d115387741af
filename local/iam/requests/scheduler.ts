/**
 * What IAM checks for an EventBridge Scheduler call (REST-JSON): the schedule's ARN
 * `arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>` for CreateSchedule (`POST`),
 * UpdateSchedule (`PUT`), GetSchedule (`GET`), DeleteSchedule (`DELETE` on `/schedules/{Name}`),
 * `*` for ListSchedules (`GET /schedules`). Creating or updating a schedule hands Scheduler the
 * target's role, so AWS also requires `iam:PassRole` on `Target.RoleArn`, with
 * `iam:PassedToService` = `scheduler.amazonaws.com`.
 */
import { LOCAL_ACCOUNT } from '../../config.ts';
import type { Check } from '../evaluate.ts';

const SCHEDULE_PATH = /^\/schedules\/([^/]+)$/;
const METHODS: Record<string, string> = {
  POST: 'CreateSchedule',
  PUT: 'UpdateSchedule',
  GET: 'GetSchedule',
  DELETE: 'DeleteSchedule',
};

/** The checks of one Scheduler request; undefined for a call the endpoint does not serve. */
export function schedulerChecks(method: string, url: URL, body: string, region: string): Check[] | undefined {
  if (url.pathname === '/schedules' && method === 'GET') {
    return [{ action: 'scheduler:ListSchedules', resource: '*' }];
  }
  const match = SCHEDULE_PATH.exec(url.pathname);
  const operation = METHODS[method];
  if (!match?.[1] || !operation) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
  let params: { GroupName?: unknown; Target?: { RoleArn?: unknown } } = {};
  if (method === 'POST' || method === 'PUT') {
    try {
      params = JSON.parse(body || '{}') as typeof params;
    } catch {
      params = {};
    }
  }
  const bodyGroup = typeof params.GroupName === 'string' ? params.GroupName : undefined;
  const group = bodyGroup ?? url.searchParams.get('groupName') ?? 'default';
  const checks: Check[] = [
    {
      action: `scheduler:${operation}`,
      resource: `arn:aws:scheduler:${region}:${LOCAL_ACCOUNT}:schedule/${group}/${name}`,
    },
  ];
  const role = params.Target?.RoleArn;
  if (typeof role === 'string') {
    checks.push({
      action: 'iam:PassRole',
      resource: role,
      context: { 'iam:PassedToService': 'scheduler.amazonaws.com' },
    });
  }
  return checks;
}
