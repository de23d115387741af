/**
 * The executions of local mode: started on the aws-local-stepfunctions interpreter, tracked in
 * memory with their history, persisted so `DescribeExecution` answers after a restart.
 * Executions still running when the process stopped are marked ABORTED on load.
 *
 * The store is a journal (local/stepfunctions/journal.ts): a started, ended or stopped execution
 * appends its record as one line, the changes of one moment written together; the file is
 * rewritten whole only at load and when it has grown to several times what it holds, so a
 * change costs its own record, not every execution's (a store rewritten whole on each change
 * took the whole main thread once it held a few thousand). Ended executions are kept 90 days,
 * as AWS keeps a standard workflow's history.
 */
import { randomUUID } from 'node:crypto';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import { SfnApiError } from './errors.ts';
import { ExecutionJournal } from './journal.ts';
import { type PreparedMachine, prepareDefinition } from './machine.ts';
import { runTaskResource, type TaskServices, TOKEN_PLACEHOLDER } from './task-resources.ts';

/** A state machine the shim serves. */
export interface MachineSpec {
  name: string;
  arn: string;
  definition: StateMachineDefinition;
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** One history event (the interpreter's event log, timestamped). */
export interface HistoryEvent {
  id: number;
  timestamp: number;
  type: string;
  details: Record<string, unknown>;
}

/** An execution as kept and persisted (dates in epoch milliseconds). */
export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  events: HistoryEvent[];
}

type Machine = MachineSpec & { prepared: PreparedMachine; interpreter: StateMachine };

const MAX_EVENTS = 1000;
const NAME_PATTERN = /^[A-Za-z0-9_-]{1,80}$/;

/** The Step Functions service of local mode, without its HTTP face. */
export class LocalStepFunctions {
  private readonly machines = new Map<string, Machine>();
  private readonly executions = new Map<string, ExecutionRecord>();
  private readonly aborts = new Map<string, () => void>();
  private readonly settled = new Map<string, Promise<void>>();
  private readonly journal?: ExecutionJournal<ExecutionRecord>;

  constructor(
    machines: readonly MachineSpec[],
    private readonly services: TaskServices,
    /** File the executions persist to (a journal of JSON lines); none: memory only. */
    storeFile?: string,
  ) {
    if (storeFile) {
      this.journal = new ExecutionJournal(
        storeFile,
        this.executions,
        (record) => record.executionArn,
        keepRecord,
      );
    }
    for (const machine of machines) {
      const prepared = prepareDefinition(machine.definition);
      // Validating a definition takes a few hundred ms: once per machine, not per execution.
      this.machines.set(machine.arn, {
        ...machine,
        prepared,
        interpreter: newStateMachine(prepared.definition),
      });
    }
  }

  /** Read the persisted executions; those left RUNNING become ABORTED (their tasks are gone). */
  async load(): Promise<void> {
    if (!this.journal) return;
    for (const record of await this.journal.load()) {
      if (record.status === 'RUNNING') {
        record.status = 'ABORTED';
        record.stopDate = Date.now();
        record.cause = 'local mode stopped while the execution ran';
      }
      this.executions.set(record.executionArn, record);
    }
    // One line per execution again, the ABORTED ones included; ended ones past 90 days gone.
    await this.journal.compact();
  }

  /** The served state machines. */
  listMachines(): MachineSpec[] {
    return [...this.machines.values()].map(({ name, arn, definition }) => ({ name, arn, definition }));
  }

  /** StartExecution. Same name and input as a running execution: the same execution (AWS's idempotency). */
  start(stateMachineArn: string, name: string | undefined, input: string | undefined): ExecutionRecord {
    const machine = this.machines.get(stateMachineArn);
    if (!machine)
      throw new SfnApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    const executionName = name ?? randomUUID();
    if (!NAME_PATTERN.test(executionName))
      throw new SfnApiError('InvalidName', `Invalid Name: '${executionName}'`);
    const inputText = input ?? '{}';
    let inputValue: unknown;
    try {
      inputValue = JSON.parse(inputText);
    } catch {
      throw new SfnApiError('InvalidExecutionInput', 'Invalid State Machine Execution Input: not JSON');
    }
    const executionArn = `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === inputText) return existing;
      throw new SfnApiError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    const record: ExecutionRecord = {
      executionArn,
      stateMachineArn,
      name: executionName,
      status: 'RUNNING',
      startDate: Date.now(),
      input: inputText,
      events: [],
    };
    this.executions.set(executionArn, record);
    this.run(machine, record, inputValue);
    this.changed(executionArn);
    return record;
  }

  private run(machine: Machine, record: ExecutionRecord, input: unknown): void {
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [stateName, info] of machine.prepared.tasks) {
      handlers[stateName] = (taskInput) =>
        runTaskResource(this.services, { ...info, stateName, executionArn: record.executionArn }, taskInput);
    }
    const execution = machine.interpreter.run(input as never, {
      overrides: { taskResourceLocalHandlers: handlers as never },
      context: {
        Execution: { Id: record.executionArn, Name: record.name, RedriveCount: 0 },
        StateMachine: { Id: machine.arn, Name: machine.name },
        Task: { Token: TOKEN_PLACEHOLDER },
      },
    });
    this.aborts.set(record.executionArn, execution.abort);
    const logging = this.recordEvents(record, execution.eventLogs);
    const done = execution.result.then(
      (output) => this.finish(record, 'SUCCEEDED', { output: JSON.stringify(output ?? null) }),
      (err: unknown) => this.finish(record, ...failureOf(err)),
    );
    // Kept while it runs: an ended execution has nothing left to wait for.
    this.settled.set(
      record.executionArn,
      Promise.all([done, logging]).then(() => {
        this.settled.delete(record.executionArn);
      }),
    );
  }

  private async recordEvents(record: ExecutionRecord, events: AsyncGenerator<unknown>): Promise<void> {
    try {
      for await (const event of events) {
        if (record.events.length >= MAX_EVENTS) continue;
        const { type, timestamp, ...details } = event as { type: string; timestamp: number };
        record.events.push({ id: record.events.length + 1, timestamp, type, details });
      }
    } catch {
      // The event log ends with the execution; an error here must not fail the execution.
    }
  }

  private finish(
    record: ExecutionRecord,
    status: ExecutionStatus,
    detail: { output?: string; error?: string; cause?: string },
  ): void {
    this.aborts.delete(record.executionArn);
    this.services.tokens.cancelExecution(record.executionArn);
    if (record.status !== 'RUNNING') return; // already stopped by StopExecution
    Object.assign(record, { status, stopDate: Date.now() }, detail);
    this.changed(record.executionArn);
  }

  /** StopExecution: the execution ends ABORTED at once; nothing after its current state runs. */
  stop(executionArn: string, error?: string, cause?: string): ExecutionRecord {
    const record = this.describe(executionArn);
    if (record.status === 'RUNNING') {
      Object.assign(record, { status: 'ABORTED', stopDate: Date.now(), error, cause });
      this.services.tokens.cancelExecution(executionArn);
      this.aborts.get(executionArn)?.();
      this.aborts.delete(executionArn);
      this.changed(executionArn);
    }
    return record;
  }

  /** DescribeExecution. */
  describe(executionArn: string): ExecutionRecord {
    const record = this.executions.get(executionArn);
    if (!record)
      throw new SfnApiError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  }

  /** ListExecutions of one machine, newest first, optionally by status. */
  list(stateMachineArn: string, statusFilter?: string): ExecutionRecord[] {
    if (!this.machines.has(stateMachineArn)) {
      throw new SfnApiError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    }
    return [...this.executions.values()]
      .filter((e) => e.stateMachineArn === stateMachineArn && (!statusFilter || e.status === statusFilter))
      .sort((a, b) => b.startDate - a.startDate);
  }

  /** Resolves when the execution has ended and its history is complete (tests). */
  async settledOf(executionArn: string): Promise<void> {
    await this.settled.get(executionArn);
  }

  /** Abort every running execution and write what changed (shutdown). */
  async close(): Promise<void> {
    for (const [arn, abort] of this.aborts) {
      this.services.tokens.cancelExecution(arn);
      abort();
    }
    this.aborts.clear();
    await this.journal?.flush();
  }

  /** Notes a change of `executionArn`'s record for the journal. */
  private changed(executionArn: string): void {
    this.journal?.changed(executionArn);
  }
}

/** How long an ended execution is kept (AWS: 90 days for a standard workflow). */
export const ENDED_EXECUTION_DAYS = 90;

/** Whether the journal keeps `record` at a rewrite: running, or ended within the last 90 days. */
function keepRecord(record: ExecutionRecord, now: number): boolean {
  return record.stopDate === undefined || now - record.stopDate < ENDED_EXECUTION_DAYS * 86_400_000;
}

function newStateMachine(definition: StateMachineDefinition): StateMachine {
  try {
    return new StateMachine(definition, { validationOptions: { checkArn: false, checkPaths: false } });
  } catch {
    // The validator lags behind AWS on some fields CDK emits; the interpreter runs them anyway.
    return new StateMachine(definition, { validationOptions: { noValidate: true } });
  }
}

/** How an interpreter rejection maps to a final status with Error and Cause. */
function failureOf(err: unknown): [ExecutionStatus, { error?: string; cause?: string }] {
  if (err instanceof ExecutionAbortedError) return ['ABORTED', {}];
  if (err instanceof ExecutionTimeoutError) {
    return ['TIMED_OUT', { error: 'States.Timeout', cause: 'The execution timed out' }];
  }
  const inner = err instanceof ExecutionError && err.cause instanceof Error ? err.cause : (err as Error);
  return ['FAILED', { error: inner?.name ?? 'States.Runtime', cause: inner?.message ?? String(err) }];
}
