/**
 * The whole floe pipeline in one stack.
 */
import { Aws, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { Construct } from 'constructs';
import { loadAssets } from './assets';
import { LakeCatalog } from './catalog';
import type { FloeConfig } from './config';
import { PipelineMonitoring } from './monitoring';
import { databaseName, GOLD_DATABASE, LANDING_PREFIX, PIPELINE, STAGES, type StageName } from './pipeline';
import { sizeStages, type StageSizing } from './sizing';
import { StageFunction } from './stage-function';
import { StageQueue } from './stage-queue';
import { LakeStorage } from './storage';

/** Props of {@link FloeStack}. */
export interface FloeStackProps extends StackProps {
  /** The validated context. */
  readonly config: FloeConfig;
}

/**
 * Output keys `floe` and scripts/deploy.sh read (`aws cloudformation describe-stacks` or
 * `cdk deploy --outputs-file`). Renaming one breaks them: they are a contract.
 */
export const OUTPUTS = {
  region: 'Region',
  landingBucket: 'LandingBucket',
  quarantineBucket: 'QuarantineBucket',
  lakeBucket: 'LakeBucket',
  lakeLocation: 'LakeLocation',
  resultsBucket: 'AthenaResultsBucket',
  outputLocation: 'AthenaOutputLocation',
  workgroup: 'AthenaWorkgroup',
  /** The gold database's name on AWS: the Glue database prefix, then `gold`. */
  goldDatabase: 'GoldDatabase',
  notificationTopic: 'NotificationTopicArn',
  dashboard: 'DashboardName',
  /** `<Stage>QueueUrl` and `<Stage>DeadLetterQueueUrl` per stage, e.g. LandingQueueUrl. */
  queueUrl: (stage: StageName) => `${capitalise(stage)}QueueUrl`,
  deadLetterQueueUrl: (stage: StageName) => `${capitalise(stage)}DeadLetterQueueUrl`,
} as const;

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * floe on AWS: S3 landing -> EventBridge -> SQS-chained Lambda functions -> Athena over Iceberg
 * tables in Glue, with alarms and a dashboard.
 *
 * Why one stack: the pieces only make sense together (the rule targets the landing queue, each
 * function's environment names the next queue), and one `cdk deploy` per stage is what
 * scripts/deploy.sh runs. The stack is environment-agnostic (account and region come from the
 * deploying credentials), so `cdk synth` needs neither credentials nor network.
 */
export class FloeStack extends Stack {
  /** Buckets and key. */
  readonly storage: LakeStorage;
  /** Glue databases and the Athena workgroup. */
  readonly catalog: LakeCatalog;
  /** Each stage's queue. */
  readonly queues: ReadonlyMap<StageName, StageQueue>;
  /** Each stage's function. */
  readonly functions: ReadonlyMap<StageName, StageFunction>;
  /** Each stage's sizes: records and queries per invocation, invocations, memory, timeouts, retries. */
  readonly sizing: ReadonlyMap<StageName, StageSizing>;
  /** Alarms, dashboard, topic. */
  readonly monitoring: PipelineMonitoring;
  /** The project's sources. */
  readonly sources: readonly string[];

  constructor(scope: Construct, id: string, props: FloeStackProps) {
    super(scope, id, props);
    const { config } = props;
    const assets = loadAssets(config.assetDir, STAGES.map((s) => PIPELINE[s].binary));
    this.sources = assets.sources;
    this.sizing = sizeStages({
      batchConcurrency: config.batchConcurrency,
      athenaQueryQuota: config.athenaQueryQuota,
      projectConcurrency: assets.projectConcurrency,
      largestFile: assets.largestFile,
    });

    this.storage = new LakeStorage(this, 'Storage', { prefix: config.prefix, settings: config.settings });
    this.catalog = new LakeCatalog(this, 'Catalog', {
      prefix: config.prefix,
      sources: this.sources,
      lakeLocation: this.storage.lakeLocation,
      resultsBucket: this.storage.results,
      key: this.storage.key,
      settings: config.settings,
    });

    const queues = new Map<StageName, StageQueue>();
    for (const stage of STAGES) {
      queues.set(
        stage,
        new StageQueue(this, `${capitalise(stage)}Queue`, {
          queueName: `${config.prefix}-${stage}`,
          visibilityTimeout: Duration.seconds(this.sizing.get(stage)!.visibilityTimeoutSeconds),
          maxReceiveCount: this.sizing.get(stage)!.maxReceiveCount,
        }),
      );
    }
    this.queues = queues;

    const functions = new Map<StageName, StageFunction>();
    for (const stage of STAGES) {
      const spec = PIPELINE[stage];
      functions.set(
        stage,
        new StageFunction(this, `${capitalise(stage)}Stage`, {
          spec,
          config,
          codeDir: assets.codeDirs.get(spec.binary)!,
          sources: this.sources,
          queue: queues.get(stage)!,
          nextQueues: queues,
          storage: this.storage,
          catalog: this.catalog,
          sizing: this.sizing.get(stage)!,
        }),
      );
    }
    this.functions = functions;

    // S3 "Object Created" under landing/ -> the landing queue, as the same event EventBridge
    // delivers (the landing service reads exactly this shape). Undeliverable events go to the
    // landing DLQ, where `floe redrive` finds them.
    const landing = queues.get('landing')!;
    new events.Rule(this, 'LandedFiles', {
      ruleName: `${config.prefix}-landed-files`,
      description: 'S3 Object Created under landing/ in the landing bucket -> the landing queue',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [this.storage.landing.bucketName] },
          object: { key: events.Match.prefix(`${LANDING_PREFIX}/`) },
        },
      },
      targets: [
        new targets.SqsQueue(landing.queue, {
          deadLetterQueue: landing.deadLetterQueue,
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });

    // Every hour the landing service lands the files of landing/ that the file ledger
    // (floe_audit.files) does not know: a file whose event never came (or was lost) is landed
    // all the same (shared/pipeline landing.rs, `S3Event::Reconcile`).
    new events.Rule(this, 'ReconcileLanding', {
      ruleName: `${config.prefix}-reconcile-landing`,
      description: 'Hourly: land the files under landing/ that floe_audit.files does not know',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [
        new targets.SqsQueue(landing.queue, {
          message: events.RuleTargetInput.fromObject({ floe: 'reconcile' }),
          deadLetterQueue: landing.deadLetterQueue,
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });

    // Table maintenance (shared/pipeline maintenance.rs): the modelling function compacts small
    // files, expires snapshots past floe.yaml's retention and removes unreferenced files of every
    // table. A failure is retried as any message, then dead-lettered: the modelling alarms
    // (dead letters, function errors) cover it.
    if (config.maintenanceSchedule) {
      const modelling = queues.get('modelling')!;
      new events.Rule(this, 'TableMaintenance', {
        ruleName: `${config.prefix}-table-maintenance`,
        description: 'floe maintain --all: compaction, snapshot expiry, unreferenced files',
        schedule: events.Schedule.expression(config.maintenanceSchedule),
        targets: [
          new targets.SqsQueue(modelling.queue, {
            message: events.RuleTargetInput.fromObject({ maintain: 'all' }),
            deadLetterQueue: modelling.deadLetterQueue,
            retryAttempts: 185,
            maxEventAge: Duration.hours(24),
          }),
        ],
      });
    }

    this.monitoring = new PipelineMonitoring(this, 'Monitoring', {
      config,
      stages: STAGES.map((s) => ({ fn: functions.get(s)!, queue: queues.get(s)! })),
      workgroupName: this.catalog.workgroupName,
    });

    const output = (key: string, value: string, description: string) =>
      new CfnOutput(this, key, { value, description });
    output(OUTPUTS.region, Aws.REGION, 'athena.region in floe.yaml');
    output(OUTPUTS.landingBucket, this.storage.landing.bucketName, 'athena.landing_bucket: floe land uploads here, under landing/');
    output(OUTPUTS.quarantineBucket, this.storage.quarantine.bucketName, 'refused files and their reports, under quarantine/');
    output(OUTPUTS.lakeBucket, this.storage.lake.bucketName, 'the Iceberg warehouse bucket');
    output(OUTPUTS.lakeLocation, this.storage.lakeLocation, 'athena.lake_location (FLOE_LAKE_LOCATION)');
    output(OUTPUTS.resultsBucket, this.storage.results.bucketName, 'Athena query results');
    output(OUTPUTS.outputLocation, this.catalog.outputLocation, 'athena.output_location');
    output(OUTPUTS.workgroup, this.catalog.workgroupName, 'athena.workgroup');
    output(
      OUTPUTS.goldDatabase,
      databaseName(this.catalog.databasePrefix, GOLD_DATABASE),
      'the gold models\' Glue database; every floe database carries the same prefix (FLOE_GLUE_DATABASE_PREFIX)',
    );
    output(OUTPUTS.notificationTopic, this.monitoring.topic.topicArn, 'alarms and floe.failed / floe.quarantined events');
    output(OUTPUTS.dashboard, this.monitoring.dashboard.dashboardName, 'the CloudWatch dashboard');
    for (const stage of STAGES) {
      const q = queues.get(stage)!;
      output(OUTPUTS.queueUrl(stage), q.queue.queueUrl, `the ${stage} queue (floe inject --to, floe redrive --queue)`);
      output(OUTPUTS.deadLetterQueueUrl(stage), q.deadLetterQueue.queueUrl, `the ${stage} dead-letter queue`);
    }
  }
}
