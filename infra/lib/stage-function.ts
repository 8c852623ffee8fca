/**
 * One stage's Lambda function: its code, role, log group and the event source mapping from
 * its queue.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { LakeCatalog } from './catalog';
import type { FloeConfig } from './config';
import { acknowledgeScopedWildcard } from './nag';
import {
  databaseName,
  databasesOf,
  INCOMING_DATABASE,
  LAKE_PREFIX,
  LANDING_PREFIX,
  QUARANTINE_PREFIX,
  queueUrlVariable,
  RESULTS_PREFIX,
  type StageName,
  type StageSpec,
} from './pipeline';
import type { StageSizing } from './sizing';
import type { StageQueue } from './stage-queue';
import type { LakeStorage } from './storage';

/** Where the floe project is inside the function's code (FLOE_PROJECT_DIR). */
export const PROJECT_DIR_IN_LAMBDA = '/var/task/project';
/** The EventBridge bus for `floe.*` events (FLOE_EVENT_BUS). */
export const EVENT_BUS_NAME = 'default';

/** Props of {@link StageFunction}. */
export interface StageFunctionProps {
  /** The stage. */
  readonly spec: StageSpec;
  /** The app's configuration (names, stage settings). */
  readonly config: FloeConfig;
  /** The folder with `bootstrap` and `project/`. */
  readonly codeDir: string;
  /** The project's sources. */
  readonly sources: readonly string[];
  /** The queue this function consumes, and its DLQ. */
  readonly queue: StageQueue;
  /** The queues of the stages it sends to. */
  readonly nextQueues: ReadonlyMap<StageName, StageQueue>;
  /** Buckets and key. */
  readonly storage: LakeStorage;
  /** Glue databases and the workgroup. */
  readonly catalog: LakeCatalog;
  /** Memory, timeouts, batch, concurrency and Athena budget (sizing.ts). */
  readonly sizing: StageSizing;
}

/**
 * A pipeline stage as an SQS-triggered Lambda function (provided.al2023, arm64).
 *
 * Why this shape: the Rust service reads everything from its environment once at cold start, so
 * the environment here is the contract (shared/lambda/src/settings.rs). The event source mapping
 * reports partial batch failures, as the service answers with SqsBatchResponse, hands over as
 * many records as the function handles at once, and its maximumConcurrency keeps the stage
 * within its share of the Athena query quota (sizing.ts). The log group has no fixed name
 * (CloudFormation names it; the function logs there through its logging config), so a kept log
 * group never blocks a later deploy. The role is
 * the function's own and grants only what this stage does (see PIPELINE in pipeline.ts): its
 * Athena workgroup, the Glue databases and lake prefixes of the layers it reads and writes, the
 * queues it sends to and its own DLQ, the key, the default bus, its own log group. No AWS
 * managed policy, no wildcard action; a wildcard only ever ends an ARN under a named prefix.
 */
export class StageFunction extends Construct {
  /** The function. */
  readonly function: lambda.Function;
  /** Its execution role. */
  readonly role: iam.Role;
  /** Its log group. */
  readonly logGroup: logs.LogGroup;
  /** The stage. */
  readonly spec: StageSpec;

  constructor(scope: Construct, id: string, props: StageFunctionProps) {
    super(scope, id);
    const { spec, config, storage, catalog, sizing } = props;
    this.spec = spec;
    const functionName = `${config.prefix}-${spec.stage}`;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: config.settings.logRetention,
      removalPolicy: config.settings.removalPolicy,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `floe ${spec.stage} function: only what the ${spec.stage} stage reads and writes`,
    });
    this.logGroup.grantWrite(this.role);
    this.grantLake(props);
    this.grantPipeline(props);

    const environment: Record<string, string> = {
      FLOE_PROJECT_DIR: PROJECT_DIR_IN_LAMBDA,
      FLOE_ENGINE: 'athena',
      FLOE_LANDING_BUCKET: storage.landing.bucketName,
      FLOE_QUARANTINE_BUCKET: storage.quarantine.bucketName,
      FLOE_ATHENA_WORKGROUP: catalog.workgroupName,
      FLOE_LAKE_LOCATION: storage.lakeLocation,
      FLOE_ATHENA_OUTPUT_LOCATION: catalog.outputLocation,
      FLOE_DLQ_URL: props.queue.deadLetterQueue.queueUrl,
      FLOE_EVENT_BUS: EVENT_BUS_NAME,
      FLOE_BATCH_CONCURRENCY: String(sizing.recordsAtOnce),
      // The Athena queries one invocation was sized for (sizing.ts, athena-quota.ts): the
      // services hold them to it across everything they run at once.
      FLOE_ATHENA_MAX_CONCURRENT_QUERIES: String(sizing.queriesPerInvocation),
      // Below the function's timeout, so the service stops a query it gives up on before Lambda
      // ends the invocation.
      FLOE_ATHENA_QUERY_TIMEOUT_SECONDS: String(sizing.queryTimeoutSeconds),
    };
    if (catalog.databasePrefix !== '') {
      // Every Glue database name on AWS is this prefix and floe's name (pipeline.ts databaseName).
      environment.FLOE_GLUE_DATABASE_PREFIX = catalog.databasePrefix;
    }
    for (const next of spec.sendsTo) {
      environment[queueUrlVariable(next)] = this.nextQueue(props, next).queue.queueUrl;
    }

    this.function = new lambda.Function(this, 'Function', {
      functionName,
      description: `floe ${spec.stage} stage (${spec.binary})`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.codeDir),
      memorySize: sizing.memoryMb,
      timeout: Duration.seconds(sizing.timeoutSeconds),
      role: this.role,
      logGroup: this.logGroup,
      environment,
    });
    // lambda.Function makes the function DependsOn its role, which it also references by GetAtt;
    // cfn-lint warns about the redundant edge (W3005). It is harmless, so it is silenced for
    // these four resources only.
    (this.function.node.defaultChild as lambda.CfnFunction).addMetadata('cfn-lint', {
      config: { ignore_checks: ['W3005'] },
    });
    this.function.addEventSource(
      new SqsEventSource(props.queue.queue, {
        batchSize: sizing.batchSize,
        maxBatchingWindow: Duration.seconds(sizing.maxBatchingWindowSeconds),
        reportBatchItemFailures: true,
        maxConcurrency: sizing.maxConcurrency,
      }),
    );
  }

  private nextQueue(props: StageFunctionProps, stage: StageName): StageQueue {
    const q = props.nextQueues.get(stage);
    if (!q) throw new Error(`the ${props.spec.stage} stage sends to ${stage}, but no ${stage} queue was given`);
    return q;
  }

  /** Adds one statement; a resource ending in a wildcard is acknowledged to cdk-nag with `why`. */
  private allow(sid: string, actions: string[], resources: string[], why?: string): void {
    if (actions.some((a) => a.includes('*'))) throw new Error(`${sid}: wildcard actions are not allowed`);
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources }));
    for (const r of resources) {
      if (why === undefined) continue;
      acknowledgeScopedWildcard(this.role, r, why);
    }
  }

  /** Athena, Glue and the lake's S3 prefixes for the layers this stage reads and writes. */
  private grantLake(props: StageFunctionProps): void {
    const { spec, storage, catalog, sources } = props;
    const prefix = catalog.databasePrefix;
    const incoming = databaseName(prefix, INCOMING_DATABASE);
    const written = spec.writes.flatMap((l) => databasesOf(l, sources, prefix));
    const read = [...new Set([...spec.reads.flatMap((l) => databasesOf(l, sources, prefix)), ...written])];
    const catalogWrites = spec.writesIncomingRows ? [...written, incoming] : written;
    const catalogReads = spec.writesIncomingRows ? [...read, incoming] : read;
    const lake = (key: string) => storage.lake.arnForObjects(`${LAKE_PREFIX}/${key}`);
    const tablesWhy = 'tables of the named Glue databases are created at run time (one view and one __data Iceberg table per floe table, temporary incoming tables)';
    const filesWhy = 'Iceberg data and metadata files of the named databases are created at run time under their table prefixes';
    const pinsWhy = 'publish records (_floe/published/<database>/<table>.json) of the named databases are written at run time, one per table';

    this.allow(
      'RunAthenaQueries',
      ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution'],
      [catalog.workgroupArn],
    );
    this.allow(
      'ReadCatalog',
      ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartitions'],
      [catalog.catalogArn, ...catalogReads.map((d) => catalog.databaseArn(d)), ...catalogReads.map((d) => catalog.tablesArn(d))],
      tablesWhy,
    );
    this.allow(
      'WriteCatalog',
      ['glue:CreateDatabase', 'glue:CreateTable', 'glue:UpdateTable', 'glue:DeleteTable'],
      [catalog.catalogArn, ...catalogWrites.map((d) => catalog.databaseArn(d)), ...catalogWrites.map((d) => catalog.tablesArn(d))],
      tablesWhy,
    );
    // Listing lets a missing object read as 404 (a never-published table) instead of 403, and
    // lets Athena list table prefixes; it reveals key names only.
    this.allow('ListLakeBucket', ['s3:ListBucket', 's3:GetBucketLocation'], [storage.lake.bucketArn]);
    this.allow('ReadLakeTables', ['s3:GetObject'], read.map((d) => lake(`${d}/*`)), filesWhy);
    this.allow('ReadPublishRecords', ['s3:GetObject'], read.map((d) => lake(`_floe/published/${d}/*`)), pinsWhy);
    this.allow(
      'WriteLakeTables',
      ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      written.map((d) => lake(`${d}/*`)),
      filesWhy,
    );
    this.allow(
      'WritePublishRecords',
      ['s3:PutObject', 's3:DeleteObject'],
      written.map((d) => lake(`_floe/published/${d}/*`)),
      pinsWhy,
    );
    if (spec.writesIncomingRows) {
      this.allow(
        'StageIncomingRows',
        ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        [lake('_floe/incoming/*')],
        'rows written by the function are staged as one Parquet folder per batch under _floe/incoming/, named at run time',
      );
    }
    this.allow('ListResultsBucket', ['s3:ListBucket', 's3:GetBucketLocation'], [storage.results.bucketArn]);
    this.allow(
      'WriteQueryResults',
      ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
      [storage.results.arnForObjects(`${RESULTS_PREFIX}/*`)],
      'Athena writes each query result under athena/ in the results bucket with a name made at run time',
    );
    this.allow('UseDataKey', ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], [storage.key.keyArn]);
  }

  /** Files, queues and events of the pipeline itself. */
  private grantPipeline(props: StageFunctionProps): void {
    const { spec, storage } = props;
    if (spec.readsLanding) {
      this.allow('ListLandingBucket', ['s3:ListBucket'], [storage.landing.bucketArn]);
      this.allow(
        'ReadLandedFiles',
        ['s3:GetObject', 's3:GetObjectVersion'],
        [storage.landing.arnForObjects(`${LANDING_PREFIX}/*`)],
        'landed files are named by the source systems: landing/<source>/<table>/<extract_ts>/<file>',
      );
    }
    if (spec.writesQuarantine) {
      this.allow(
        'QuarantineFiles',
        ['s3:PutObject'],
        [storage.quarantine.arnForObjects(`${QUARANTINE_PREFIX}/*`)],
        'a refused file and its report keep their landing key under quarantine/<source>/<table>/<extract_ts>/',
      );
    }
    this.allow(
      'SendToNextStages',
      ['sqs:SendMessage'],
      spec.sendsTo.map((s) => this.nextQueue(props, s).queue.queueArn),
    );
    this.allow('DeadLetterPermanentFailures', ['sqs:SendMessage'], [props.queue.deadLetterQueue.queueArn]);
    this.allow(
      'PutPipelineEvents',
      ['events:PutEvents'],
      [Stack.of(this).formatArn({ service: 'events', resource: 'event-bus', resourceName: EVENT_BUS_NAME })],
    );
  }
}
