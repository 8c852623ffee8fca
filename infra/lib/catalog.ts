/**
 * The Glue databases of the lake and the Athena workgroup that queries it.
 */
import { Aws, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as glue from 'aws-cdk-lib/aws-glue';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { StageSettings } from './config';
import { allDatabases, RESULTS_PREFIX } from './pipeline';

/** Glue's longest database name. */
const GLUE_NAME_MAX = 255;

/** Props of {@link LakeCatalog}. */
export interface LakeCatalogProps {
  /** Name prefix (`floe-<stage>`): the workgroup's name. */
  readonly prefix: string;
  /** The project's sources: one bronze and one silver database each. */
  readonly sources: readonly string[];
  /** The Iceberg warehouse, `s3://<lake bucket>/warehouse`: each database's location is below it. */
  readonly lakeLocation: string;
  /** Where Athena writes results. */
  readonly resultsBucket: s3.IBucket;
  /** Encrypts the results. */
  readonly key: kms.IKey;
  /** The deployment stage's settings (cutoff, removal, Glue database prefix). */
  readonly settings: StageSettings;
}

/**
 * Glue databases per layer (`bronze_<source>`, `silver_<source>`, `gold`, `floe_audit`,
 * `floe_incoming`, each behind the stage's prefix, e.g. `floe_dev_gold`) and the Athena
 * workgroup floe runs every query in.
 *
 * Why: the databases are created here, not by the functions on first use, so each function's
 * IAM policy can name exactly the databases it touches, and a deleted stack in dev leaves
 * nothing behind. The prefix lets dev and prod share an account (and steer clear of databases
 * the account already has). prod keeps its databases when the stack is deleted, but not when the
 * create that made them rolls back, so a failed first deploy can simply be retried. The
 * workgroup holds no data and is never kept: a kept workgroup's fixed name would block the next
 * deploy. The workgroup enforces its settings, so every query, whoever runs it, writes
 * KMS-encrypted results under `athena/` in the results bucket, is cancelled past the stage's
 * bytes-scanned cutoff, runs on engine v3 (Iceberg writes), and publishes the CloudWatch metrics
 * the failed-query alarm watches.
 */
export class LakeCatalog extends Construct {
  /** Every database, by its name on AWS (prefixed). */
  readonly databases: ReadonlyMap<string, glue.CfnDatabase>;
  /** The prefix of every database name (FLOE_GLUE_DATABASE_PREFIX; empty for none). */
  readonly databasePrefix: string;
  /** The workgroup. */
  readonly workgroup: athena.CfnWorkGroup;
  /** The workgroup's name (FLOE_ATHENA_WORKGROUP). */
  readonly workgroupName: string;
  /** Where query results go (FLOE_ATHENA_OUTPUT_LOCATION). */
  readonly outputLocation: string;

  constructor(scope: Construct, id: string, props: LakeCatalogProps) {
    super(scope, id);
    const removalPolicy = props.settings.removalPolicy;
    this.databasePrefix = props.settings.glueDatabasePrefix;
    const databases = new Map<string, glue.CfnDatabase>();
    for (const name of allDatabases(props.sources, this.databasePrefix)) {
      if (name.length > GLUE_NAME_MAX) {
        throw new Error(`the Glue database name '${name}' is longer than Glue's ${GLUE_NAME_MAX} characters: shorten the source name or glueDatabasePrefix`);
      }
      const db = new glue.CfnDatabase(this, `Database-${name}`, {
        catalogId: Aws.ACCOUNT_ID,
        databaseInput: {
          name,
          description: `floe: ${name}`,
          locationUri: `${props.lakeLocation}/${name}`,
        },
      });
      db.applyRemovalPolicy(removalPolicy);
      databases.set(name, db);
    }
    this.databases = databases;

    this.workgroupName = props.prefix;
    this.outputLocation = `s3://${props.resultsBucket.bucketName}/${RESULTS_PREFIX}/`;
    this.workgroup = new athena.CfnWorkGroup(this, 'Workgroup', {
      name: this.workgroupName,
      description: `floe ${props.prefix}: every query of the pipeline`,
      state: 'ENABLED',
      recursiveDeleteOption: true,
      workGroupConfiguration: {
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        bytesScannedCutoffPerQuery: props.settings.bytesScannedCutoffPerQuery,
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        resultConfiguration: {
          outputLocation: this.outputLocation,
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: props.key.keyArn },
        },
      },
    });
    this.workgroup.applyRemovalPolicy(RemovalPolicy.DESTROY);
  }

  /** The ARN of the workgroup. */
  get workgroupArn(): string {
    return Stack.of(this).formatArn({ service: 'athena', resource: 'workgroup', resourceName: this.workgroupName });
  }

  /** The ARN of the account's Glue Data Catalog. */
  get catalogArn(): string {
    return Stack.of(this).formatArn({ service: 'glue', resource: 'catalog' });
  }

  /** The ARN of database `name` (its name on AWS). */
  databaseArn(name: string): string {
    this.mustHave(name);
    return Stack.of(this).formatArn({ service: 'glue', resource: 'database', resourceName: name });
  }

  /** The ARN covering every table (and view) of database `name`. */
  tablesArn(name: string): string {
    this.mustHave(name);
    return Stack.of(this).formatArn({ service: 'glue', resource: 'table', resourceName: `${name}/*` });
  }

  private mustHave(name: string): void {
    if (!this.databases.has(name)) throw new Error(`no Glue database '${name}' in the catalog`);
  }
}
