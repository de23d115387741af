/**
 * Preparing a state machine definition for the interpreter: find its Task states (nested ones
 * too) and take over the timeouts the interpreter would get wrong for `.waitForTaskToken` states
 * (it ignores HeartbeatSeconds and defaults TimeoutSeconds to 60 s).
 */
import type { StateMachineDefinition } from 'aws-local-stepfunctions';

/** Resource of the SQS send-and-wait integration. */
export const SQS_WAIT_FOR_TOKEN = 'arn:aws:states:::sqs:sendMessage.waitForTaskToken';

// The largest delay setTimeout honours (2^31-1 ms); longer ones fire at once.
const MAX_TIMER_SECONDS = 2_147_483;

/** A Task state as the shim needs it. */
export interface TaskStateInfo {
  resource: string;
  /** The definition's HeartbeatSeconds / TimeoutSeconds, enforced by the shim for token tasks. */
  heartbeatSeconds?: number;
  timeoutSeconds?: number;
}

/** A definition ready to run, with its Task states by name. */
export interface PreparedMachine {
  definition: StateMachineDefinition;
  tasks: Map<string, TaskStateInfo>;
}

type StateRecord = Record<string, unknown>;

/** Deep-copy `definition`, collecting Task states and moving token-task timeouts to the shim. */
export function prepareDefinition(definition: StateMachineDefinition): PreparedMachine {
  const copy = structuredClone(definition) as unknown as { States: Record<string, StateRecord> };
  const tasks = new Map<string, TaskStateInfo>();
  walk(copy.States, tasks);
  return { definition: copy as unknown as StateMachineDefinition, tasks };
}

function walk(states: Record<string, StateRecord>, tasks: Map<string, TaskStateInfo>): void {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Task') {
      if (tasks.has(name)) throw new Error(`two Task states are named ${name}: the shim needs unique names`);
      const info: TaskStateInfo = { resource: String(state.Resource) };
      if (info.resource.endsWith('.waitForTaskToken')) {
        if (typeof state.HeartbeatSeconds === 'number') info.heartbeatSeconds = state.HeartbeatSeconds;
        if (typeof state.TimeoutSeconds === 'number') info.timeoutSeconds = state.TimeoutSeconds;
        state.TimeoutSeconds = MAX_TIMER_SECONDS;
      }
      tasks.set(name, info);
    }
    for (const branch of (state.Branches as { States: Record<string, StateRecord> }[] | undefined) ?? []) {
      walk(branch.States, tasks);
    }
    for (const key of ['Iterator', 'ItemProcessor']) {
      const inner = state[key] as { States?: Record<string, StateRecord> } | undefined;
      if (inner?.States) walk(inner.States, tasks);
    }
  }
}

/** A copy of `value` with every string equal to `placeholder` replaced by `token`. */
export function replaceString(value: unknown, placeholder: string, token: string): unknown {
  if (value === placeholder) return token;
  if (Array.isArray(value)) return value.map((v) => replaceString(v, placeholder, token));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, replaceString(v, placeholder, token)]),
    );
  }
  return value;
}
