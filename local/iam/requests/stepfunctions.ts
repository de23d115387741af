/**
 * What IAM checks for a Step Functions call (`X-Amz-Target: AWSStepFunctions.<Op>`): the state
 * machine or execution ARN the call names; task token calls and listings have no resource.
 */
import type { Check } from '../evaluate.ts';

/** The parameter holding each operation's resource; absent: `*`. */
const RESOURCE_PARAM: Record<string, string> = {
  StartExecution: 'stateMachineArn',
  StartSyncExecution: 'stateMachineArn',
  DescribeStateMachine: 'stateMachineArn',
  ListExecutions: 'stateMachineArn',
  DescribeExecution: 'executionArn',
  StopExecution: 'executionArn',
  GetExecutionHistory: 'executionArn',
  DescribeStateMachineForExecution: 'executionArn',
};

/** The checks of one Step Functions call. */
export function stepFunctionsChecks(operation: string, params: Record<string, unknown>): Check[] {
  const param = RESOURCE_PARAM[operation];
  const value = param ? params[param] : undefined;
  return [{ action: `states:${operation}`, resource: typeof value === 'string' ? value : '*' }];
}
