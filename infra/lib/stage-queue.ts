/**
 * A stage's input queue and its dead-letter queue.
 */
import { Duration } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Props of {@link StageQueue}. */
export interface StageQueueProps {
  /** The queue's name; the DLQ is `<name>-dlq`. */
  readonly queueName: string;
  /** How long a received message stays hidden (sizing.ts: twice the consuming function's timeout). */
  readonly visibilityTimeout: Duration;
  /** Receives before a message goes to the DLQ (sizing.ts). */
  readonly maxReceiveCount: number;
}

/**
 * The queue in front of one stage, with a dead-letter queue.
 *
 * Why: the stages are chained through SQS so each one retries on its own and a burst of landed
 * files waits in a queue instead of overrunning Athena. A record that keeps failing reaches the
 * DLQ after `maxReceiveCount` receives; a message that can never succeed is moved there at
 * once by the service (FLOE_DLQ_URL), and `floe redrive` brings them back. The visibility timeout
 * is longer than the consuming function's timeout, so a record is not delivered again while an
 * invocation holding it can still be running; together they bound how long a failing record
 * takes to reach the DLQ (sizing.ts). Both queues are encrypted (SQS-managed keys: EventBridge
 * can deliver into them without a key policy) and refuse plain HTTP.
 */
export class StageQueue extends Construct {
  /** The stage's input. */
  readonly queue: sqs.Queue;
  /** Where failed records end up. */
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: StageQueueProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: `${props.queueName}-dlq`,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: props.queueName,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(4),
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
  }
}
