/**
 * The app's configuration: CDK context keys (cdk.json, or `-c key=value`), validated once, with
 * defaults per deployment stage. Every key is documented in infra/README.md.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** A deployment stage: `dev` is cheap and disposable, `prod` keeps data and pages on the first error. */
export type DeploymentStage = 'dev' | 'prod';

/** What differs between dev and prod. */
export interface StageSettings {
  /**
   * What happens to buckets, keys, Glue databases and log groups when the stack is deleted or
   * they are replaced. prod keeps them, except when the create that made them rolls back
   * (RETAIN_ON_UPDATE_OR_DELETE, DeletionPolicy RetainExceptOnCreate): a failed first deploy
   * leaves no named resource behind for the retry to collide with.
   */
  readonly removalPolicy: RemovalPolicy;
  /**
   * Prepended to every Glue database name (`<prefix>bronze_<source>`, `<prefix>gold`, ...), so
   * the stages can share an account; FLOE_GLUE_DATABASE_PREFIX when not empty.
   */
  readonly glueDatabasePrefix: string;
  /** How long function logs are kept. */
  readonly logRetention: RetentionDays;
  /** Athena query results are deleted after this many days. */
  readonly resultsExpiration: Duration;
  /** Replaced or deleted landed files (non-current versions) are deleted after this many days. */
  readonly landingNoncurrentExpiration: Duration;
  /** Athena cancels a query that scans more than this many bytes. */
  readonly bytesScannedCutoffPerQuery: number;
  /** Function errors in 5 minutes that raise the alarm. */
  readonly functionErrorThreshold: number;
  /** Failed Athena queries in 5 minutes that raise the alarm. */
  readonly failedQueryThreshold: number;
}

const GIB = 1024 * 1024 * 1024;

/** The defaults of each deployment stage. */
export const STAGE_SETTINGS: Readonly<Record<DeploymentStage, StageSettings>> = {
  dev: {
    removalPolicy: RemovalPolicy.DESTROY,
    glueDatabasePrefix: 'floe_dev_',
    logRetention: RetentionDays.ONE_WEEK,
    resultsExpiration: Duration.days(7),
    landingNoncurrentExpiration: Duration.days(7),
    bytesScannedCutoffPerQuery: 10 * GIB,
    functionErrorThreshold: 5,
    failedQueryThreshold: 5,
  },
  prod: {
    removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    glueDatabasePrefix: '',
    logRetention: RetentionDays.THREE_MONTHS,
    resultsExpiration: Duration.days(30),
    landingNoncurrentExpiration: Duration.days(90),
    bytesScannedCutoffPerQuery: 1024 * GIB,
    functionErrorThreshold: 1,
    failedQueryThreshold: 1,
  },
};

/** The validated configuration of one synth. */
export interface FloeConfig {
  /** `dev` or `prod` (context `stage`). */
  readonly stage: DeploymentStage;
  /** Prefix of every name: `floe-<stage>` (the stack name too). */
  readonly prefix: string;
  /** Absolute folder holding `<binary>/bootstrap` and `<binary>/project/` per function (context `assetDir`). */
  readonly assetDir: string;
  /** The account's quota of concurrent Athena DML queries (context `athenaQueryQuota`, default 20). */
  readonly athenaQueryQuota: number;
  /** Tables each invocation handles at once, FLOE_BATCH_CONCURRENCY (context `batchConcurrency`, default 2). */
  readonly batchConcurrency: number;
  /** An address subscribed to the notification topic (context `notificationEmail`, optional). */
  readonly notificationEmail?: string;
  /**
   * When table maintenance runs (`floe maintain --all` in the modelling function): an EventBridge
   * schedule expression (context `maintenanceSchedule`, default `cron(0 3 * * ? *)`, 03:00 UTC
   * daily), or undefined for `off`.
   */
  readonly maintenanceSchedule?: string;
  /** The stage's settings, with `bytesScannedCutoffGb` and `glueDatabasePrefix` applied when given. */
  readonly settings: StageSettings;
}

/** Table maintenance: daily at 03:00 UTC unless the context says otherwise. */
export const DEFAULT_MAINTENANCE_SCHEDULE = 'cron(0 3 * * ? *)';

/** Thrown for a bad context value; the message names the key and what to pass. */
export class ConfigError extends Error {}

/** Reads a context value (cdk.json or `-c`), which may be a string or a JSON value. */
export type ContextReader = (key: string) => unknown;

/** A Glue database prefix: empty, or lowercase letters, digits and underscores ending in `_`. */
const DATABASE_PREFIX = /^([a-z][a-z0-9_]{0,62}_)?$/;

function positiveInteger(read: ContextReader, key: string, fallback: number): number {
  const raw = read(key);
  if (raw === undefined || raw === '') return fallback;
  const n = typeof raw === 'number' ? raw : Number(String(raw));
  if (!Number.isInteger(n) || n < 1) {
    throw new ConfigError(`context ${key} must be a positive integer, got '${raw}' (e.g. -c ${key}=${fallback})`);
  }
  return n;
}

/**
 * The configuration from the context. `baseDir` resolves a relative `assetDir` (the infra/
 * folder, where cdk.json is).
 */
export function readConfig(read: ContextReader, baseDir: string): FloeConfig {
  const stage = String(read('stage') ?? 'dev');
  if (stage !== 'dev' && stage !== 'prod') {
    throw new ConfigError(`context stage must be dev or prod, got '${stage}' (e.g. -c stage=prod)`);
  }
  const assetDir = path.resolve(baseDir, String(read('assetDir') ?? 'build/assets'));
  const email = read('notificationEmail');
  if (email !== undefined && email !== '' && !/^[^@\s]+@[^@\s]+$/.test(String(email))) {
    throw new ConfigError(`context notificationEmail is not an email address: '${email}'`);
  }
  let settings = STAGE_SETTINGS[stage];
  const cutoffGb = read('bytesScannedCutoffGb');
  if (cutoffGb !== undefined && cutoffGb !== '') {
    settings = { ...settings, bytesScannedCutoffPerQuery: positiveInteger(read, 'bytesScannedCutoffGb', 10) * GIB };
  }
  const prefix = read('glueDatabasePrefix');
  if (prefix !== undefined && prefix !== '') {
    if (!DATABASE_PREFIX.test(String(prefix))) {
      throw new ConfigError(
        `context glueDatabasePrefix must be lowercase letters, digits and underscores, start with a letter ` +
          `and end with '_' (at most 64 characters), got '${prefix}' (e.g. -c glueDatabasePrefix=floe_${stage}_)`,
      );
    }
    settings = { ...settings, glueDatabasePrefix: String(prefix) };
  }
  const schedule = String(read('maintenanceSchedule') ?? DEFAULT_MAINTENANCE_SCHEDULE).trim();
  if (schedule !== 'off' && !/^(cron|rate)\(.+\)$/.test(schedule)) {
    throw new ConfigError(
      `context maintenanceSchedule must be an EventBridge schedule expression (cron(...) or rate(...)) ` +
        `or off, got '${schedule}' (e.g. -c 'maintenanceSchedule=cron(0 3 * * ? *)')`,
    );
  }
  return {
    stage,
    prefix: `floe-${stage}`,
    maintenanceSchedule: schedule === 'off' ? undefined : schedule,
    assetDir,
    athenaQueryQuota: positiveInteger(read, 'athenaQueryQuota', 20),
    batchConcurrency: positiveInteger(read, 'batchConcurrency', 2),
    notificationEmail: email === undefined || email === '' ? undefined : String(email),
    settings,
  };
}
