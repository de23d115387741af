/**
 * The one dead-letter queue of every host queue. Host queues are created by the API at run time
 * (one per host) and CloudWatch alarms cannot use SEARCH expressions, so per-host DLQs could not
 * carry a stack-defined alarm. A single queue created here can: each host queue's RedrivePolicy
 * targets it (the API reads its ARN from `HOST_DEAD_LETTER_QUEUE_ARN`), and
 * {@link Alarms} watches it. A dead letter is the task message itself: its body names the task
 * (`taskId` = `<execution>/<step>`) and the VM, which tells an operator which host it was for.
 */
import { Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface HostDeadLettersProps {
  /** Physical queue name; must not match the host queue prefix (see `LifeboatConfig`). */
  queueName: string;
}

/** The shared host dead-letter queue: SSE, TLS only, dead letters kept 14 days. */
export class HostDeadLetters extends Construct {
  readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: HostDeadLettersProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: props.queueName,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Standard queues keep a message's first enqueue time when it is dead-lettered: the
      // maximum (14 days) leaves operators the most time after the host queue's 4 days.
      retentionPeriod: Duration.days(14),
    });
  }
}
