/**
 * Alarms, the dashboard and the notification topic.
 */
import { ArnFormat, Aws, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { FloeConfig } from './config';
import type { StageFunction } from './stage-function';
import type { StageQueue } from './stage-queue';

/** The `source` of floe's events (shared/aws eventbridge.rs `EVENT_SOURCE`). */
export const FLOE_EVENT_SOURCE = 'floe';
/** The events that reach people: a batch failed or was rejected, a file was quarantined. */
export const NOTIFIED_EVENTS = ['floe.failed', 'floe.quarantined'];
/** Every alarm looks at 5-minute periods. */
const PERIOD = Duration.minutes(5);

/** The ARN of the alarms named `name` (may end in `*`) in this stack's account and region. */
export function alarmArn(scope: Construct, name: string): string {
  return Stack.of(scope).formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
}

/** One stage's pieces, as the monitoring sees them. */
export interface MonitoredStage {
  /** The function. */
  readonly fn: StageFunction;
  /** Its queue and DLQ. */
  readonly queue: StageQueue;
}

/** Props of {@link PipelineMonitoring}. */
export interface PipelineMonitoringProps {
  /** Names, thresholds, the optional email. */
  readonly config: FloeConfig;
  /** The four stages. */
  readonly stages: readonly MonitoredStage[];
  /** The Athena workgroup's name. */
  readonly workgroupName: string;
}

/**
 * Tells people when the pipeline needs them, and shows how it is doing.
 *
 * Why: floe's failures are meant to be loud, never silent. A message in any dead-letter queue,
 * function errors, and failed Athena queries each raise an alarm; floe's own `floe.failed` and
 * `floe.quarantined` events (a rejected batch, a refused file) are routed from the default bus.
 * All of it goes to one SNS topic (encrypted with its own key, which only CloudWatch and
 * EventBridge may use to publish), optionally with an email subscription. The topic's policy
 * replaces SNS's default one, so it names both publishers: EventBridge (added by the rule's
 * target) and CloudWatch, the latter only for this stack's alarms in this account (an alarm
 * action is refused, and no one is told, when CloudWatch may not publish). The dashboard puts the
 * queues, the functions, Athena and floe's own metrics (namespace `floe`) side by side.
 */
export class PipelineMonitoring extends Construct {
  /** Where alarms and floe's failure events go. */
  readonly topic: sns.Topic;
  /** Every alarm. */
  readonly alarms: cloudwatch.Alarm[] = [];
  /** The dashboard. */
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: PipelineMonitoringProps) {
    super(scope, id);
    const { config } = props;
    const key = new kms.Key(this, 'TopicKey', {
      alias: `alias/${config.prefix}-notifications`,
      description: `floe ${config.prefix}: the notification topic`,
      enableKeyRotation: true,
      removalPolicy: config.settings.removalPolicy,
    });
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      key.grant(new iam.ServicePrincipal(service), 'kms:Decrypt', 'kms:GenerateDataKey');
    }
    this.topic = new sns.Topic(this, 'Topic', {
      topicName: `${config.prefix}-notifications`,
      displayName: `floe ${config.stage}`,
      masterKey: key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowAlarmsOfThisStack',
        effect: iam.Effect.ALLOW,
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': alarmArn(this, `${config.prefix}-*`) },
        },
      }),
    );
    if (config.notificationEmail) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(config.notificationEmail));
    }

    new events.Rule(this, 'FailureEvents', {
      ruleName: `${config.prefix}-failures`,
      description: 'floe.failed and floe.quarantined events to the notification topic',
      eventPattern: { source: [FLOE_EVENT_SOURCE], detailType: NOTIFIED_EVENTS },
      targets: [new targets.SnsTopic(this.topic)],
    });

    const action = new SnsAction(this.topic);
    const alarm = (id: string, name: string, description: string, metric: cloudwatch.IMetric, threshold: number) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmName: `${config.prefix}-${name}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };

    for (const { fn, queue } of props.stages) {
      const stage = fn.spec.stage;
      alarm(
        `${stage}-dlq`,
        `${stage}-dead-letters`,
        `Messages in the ${stage} dead-letter queue: look at them, fix the cause, then floe redrive --queue ${queue.queue.queueName}`,
        queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
        1,
      );
      alarm(
        `${stage}-errors`,
        `${stage}-function-errors`,
        `The ${stage} function failed (crashed, timed out or could not start): see its log group ${fn.logGroup.logGroupName}`,
        fn.function.metricErrors({ period: PERIOD, statistic: 'Sum' }),
        config.settings.functionErrorThreshold,
      );
    }

    const athenaFailures = (queryType: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/Athena',
        metricName: 'TotalExecutionTime',
        dimensionsMap: { WorkGroup: props.workgroupName, QueryState: 'FAILED', QueryType: queryType },
        statistic: 'SampleCount',
        period: PERIOD,
      });
    const failedQueries = new cloudwatch.MathExpression({
      expression: 'FILL(dml, 0) + FILL(ddl, 0)',
      usingMetrics: { dml: athenaFailures('DML'), ddl: athenaFailures('DDL') },
      label: 'failed Athena queries',
      period: PERIOD,
    });
    alarm(
      'athena-failed-queries',
      'athena-failed-queries',
      `Athena queries failed in workgroup ${props.workgroupName} (bad SQL, the bytes-scanned cutoff, permissions): see the workgroup's query history`,
      failedQueries,
      config.settings.failedQueryThreshold,
    );

    this.dashboard = this.buildDashboard(props, failedQueries);
  }

  private buildDashboard(props: PipelineMonitoringProps, failedQueries: cloudwatch.IMetric): cloudwatch.Dashboard {
    const { config, stages } = props;
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: config.prefix,
      defaultInterval: Duration.hours(24),
    });
    const perStage = (title: string, metric: (s: MonitoredStage) => cloudwatch.Metric) =>
      new cloudwatch.GraphWidget({
        title,
        width: 8,
        left: stages.map((s) => metric(s).with({ label: s.fn.spec.stage, period: PERIOD })),
      });
    // floe's own EMF metrics: per stage, and per table where they apply (summed over tables here).
    const floeMetric = (name: string, stage: string) =>
      new cloudwatch.Metric({
        namespace: 'floe',
        metricName: name,
        dimensionsMap: { Stage: stage },
        statistic: 'Sum',
        period: PERIOD,
        label: name,
      });
    const floeTableSum = (name: string, stage: string) =>
      new cloudwatch.MathExpression({
        expression: `SUM(SEARCH('{floe,Stage,Table} Stage="${stage}" MetricName="${name}"', 'Sum', ${PERIOD.toSeconds()}))`,
        label: name,
        period: PERIOD,
      });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', width: 24, alarms: this.alarms }),
    );
    dashboard.addWidgets(
      perStage('Messages waiting', (s) => s.queue.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' })),
      perStage('Oldest message (s)', (s) => s.queue.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum' })),
      perStage('Dead letters', (s) => s.queue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum' })),
    );
    dashboard.addWidgets(
      perStage('Invocations', (s) => s.fn.function.metricInvocations({ statistic: 'Sum' })),
      perStage('Errors', (s) => s.fn.function.metricErrors({ statistic: 'Sum' })),
      perStage('Duration p90 (ms)', (s) => s.fn.function.metricDuration({ statistic: 'p90' })),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Files landed, quarantined; batches published, rejected',
        width: 12,
        left: [
          floeTableSum('FilesLanded', 'landing'),
          floeMetric('FilesQuarantined', 'landing'),
          floeTableSum('Published', 'audit'),
          floeTableSum('Rejected', 'audit'),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Athena: bytes scanned by floe, failed queries',
        width: 12,
        left: [floeMetric('BytesScanned', 'athena')],
        right: [failedQueries],
      }),
    );
    return dashboard;
  }
}
