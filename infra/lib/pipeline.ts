/**
 * The floe pipeline as the infrastructure sees it: the four stages, which queue each one sends
 * to, and which parts of the lake each one reads and writes. Everything the stack grants a
 * function is derived from this table, so a stage's permissions are reviewed in one place.
 *
 * Message flow (the Rust services' `next_stages`):
 *   landing -> standardise -> audit -> modelling -> audit
 *                               \-> standardise (a stale batch is standardised again)
 */

/** A stage of the pipeline, named as the Rust `Stage` enum prints it. */
export type StageName = 'landing' | 'standardise' | 'audit' | 'modelling';

/** The stages in pipeline order. */
export const STAGES: readonly StageName[] = ['landing', 'standardise', 'audit', 'modelling'];

/**
 * A layer of the lake, as the Glue databases that hold it:
 * `bronze` = `bronze_<source>` and `silver` = `silver_<source>` for every source,
 * `gold` = `gold`, `audit` = `floe_audit` (rejected batches). These are floe's names; on AWS each
 * carries the deployment's Glue database prefix ({@link databaseName}).
 */
export type Layer = 'bronze' | 'silver' | 'gold' | 'audit';

/** The Glue database of the gold models. */
export const GOLD_DATABASE = 'gold';
/** The Glue database of floe's own audit records (`floe_audit.rejected_batches`). */
export const AUDIT_DATABASE = 'floe_audit';
/** The Glue database of the temporary external tables over incoming rows (lake.rs `INCOMING_DATABASE`). */
export const INCOMING_DATABASE = 'floe_incoming';
/** Where the Iceberg warehouse starts inside the lake bucket: FLOE_LAKE_LOCATION is `s3://<lake bucket>/<prefix>`. */
export const LAKE_PREFIX = 'warehouse';
/** Where landed files are (shared/pipeline keys.rs `LANDING_PREFIX`, without its slash). */
export const LANDING_PREFIX = 'landing';
/** Where refused files go in the quarantine bucket (keys.rs `QUARANTINE_PREFIX`, without its slash). */
export const QUARANTINE_PREFIX = 'quarantine';
/** Where Athena writes query results in the results bucket. */
export const RESULTS_PREFIX = 'athena';

/** What one stage's function is and what it may touch. */
export interface StageSpec {
  /** The stage. */
  readonly stage: StageName;
  /** The cargo binary, and the folder of its artifact: `<assetDir>/<binary>/bootstrap`. */
  readonly binary: string;
  /** The Lambda timeout, in seconds (sizing.ts derives the queue's visibility timeout and the Athena query timeout from it). */
  readonly timeoutSeconds: number;
  /**
   * The Lambda memory, in MB (also buys CPU). For the stage that reads landed files this is the
   * floor: sizing.ts raises it to hold the files it reads at once (`max_file_mb`).
   */
  readonly memoryMb: number;
  /** The stages whose queues this stage sends to (`FLOE_<STAGE>_QUEUE_URL`). */
  readonly sendsTo: readonly StageName[];
  /** Layers read through Athena (their tables' data, metadata and publish records). */
  readonly reads: readonly Layer[];
  /** Layers written: tables created, appended, staged, published. */
  readonly writes: readonly Layer[];
  /** Whether rows from the function itself are written, through `floe_incoming` and `<lake>/_floe/incoming/`. */
  readonly writesIncomingRows: boolean;
  /** Whether it reads landed files (`landing/` in the landing bucket). */
  readonly readsLanding: boolean;
  /** Whether it writes refused files and their reports (`quarantine/` in the quarantine bucket). */
  readonly writesQuarantine: boolean;
  /**
   * How many SQS records of a batch it handles at once: `batch` = FLOE_BATCH_CONCURRENCY
   * (context `batchConcurrency`), each record running one Athena query at a time; or `one`, for
   * the stage whose single record already runs the project's `concurrency` (floe.yaml) queries
   * at once (modelling builds independent models side by side).
   */
  readonly recordsAtOnce: 'batch' | 'one';
}

/**
 * The four stages. Reads and writes follow shared/pipeline: landing appends landed rows to
 * bronze; standardise rebuilds silver from bronze minus `floe_audit.rejected_batches` and stages
 * it; audit tests staged silver (reconciling with bronze) and gold, publishes them, and records
 * rejected batches and failing rows; modelling builds gold from silver, stages it, and records
 * its runs in `floe_audit.model_runs`.
 */
export const PIPELINE: Readonly<Record<StageName, StageSpec>> = {
  landing: {
    stage: 'landing',
    binary: 'floe-landing',
    timeoutSeconds: 5 * 60,
    memoryMb: 1024,
    sendsTo: ['standardise'],
    reads: [],
    writes: ['bronze'],
    writesIncomingRows: true,
    readsLanding: true,
    writesQuarantine: true,
    recordsAtOnce: 'batch',
  },
  standardise: {
    stage: 'standardise',
    binary: 'floe-standardise',
    timeoutSeconds: 15 * 60,
    memoryMb: 1024,
    sendsTo: ['audit'],
    reads: ['bronze', 'audit'],
    writes: ['silver'],
    writesIncomingRows: false,
    readsLanding: false,
    writesQuarantine: false,
    recordsAtOnce: 'batch',
  },
  audit: {
    stage: 'audit',
    binary: 'floe-audit',
    timeoutSeconds: 15 * 60,
    memoryMb: 1024,
    sendsTo: ['standardise', 'modelling'],
    reads: ['bronze'],
    writes: ['silver', 'gold', 'audit'],
    writesIncomingRows: true,
    readsLanding: false,
    writesQuarantine: false,
    recordsAtOnce: 'batch',
  },
  modelling: {
    stage: 'modelling',
    binary: 'floe-modelling',
    timeoutSeconds: 15 * 60,
    memoryMb: 1024,
    sendsTo: ['audit'],
    reads: ['silver'],
    writes: ['gold', 'audit'],
    writesIncomingRows: true,
    readsLanding: false,
    writesQuarantine: false,
    recordsAtOnce: 'one',
  },
};

/**
 * FLOE_BATCH_CONCURRENCY of a stage, and the most Athena queries one invocation of it runs at
 * once, given the context's batch concurrency and the project's `concurrency`.
 */
export function queryBudget(
  spec: StageSpec,
  batchConcurrency: number,
  projectConcurrency: number,
): { batchConcurrency: number; queriesPerInvocation: number } {
  return spec.recordsAtOnce === 'one'
    ? { batchConcurrency: 1, queriesPerInvocation: projectConcurrency }
    : { batchConcurrency, queriesPerInvocation: batchConcurrency };
}

/**
 * A Glue database's name on AWS: the deployment's prefix (context `glueDatabasePrefix`, per stage
 * by default: `floe_dev_` in dev, none in prod) and floe's name, e.g. `floe_dev_bronze_nomis`.
 * The same name is the database's folder under the lake (`<lake>/warehouse/<name>/`) and its
 * publish records' folder (`_floe/published/<name>/`). The services learn the prefix from
 * FLOE_GLUE_DATABASE_PREFIX.
 */
export function databaseName(prefix: string, name: string): string {
  return `${prefix}${name}`;
}

/** The environment variable holding a stage's queue URL (settings.rs `queue_var`). */
export function queueUrlVariable(stage: StageName): string {
  return `FLOE_${stage.toUpperCase()}_QUEUE_URL`;
}

/** The Glue databases of `layer` on AWS, given the project's sources and the prefix. */
export function databasesOf(layer: Layer, sources: readonly string[], prefix: string): string[] {
  const names = (() => {
    switch (layer) {
      case 'bronze':
        return sources.map((s) => `bronze_${s}`);
      case 'silver':
        return sources.map((s) => `silver_${s}`);
      case 'gold':
        return [GOLD_DATABASE];
      case 'audit':
        return [AUDIT_DATABASE];
    }
  })();
  return names.map((n) => databaseName(prefix, n));
}

/** Every Glue database the pipeline uses on AWS, in a stable order. */
export function allDatabases(sources: readonly string[], prefix: string): string[] {
  return [
    ...databasesOf('bronze', sources, prefix),
    ...databasesOf('silver', sources, prefix),
    ...databasesOf('gold', sources, prefix),
    ...databasesOf('audit', sources, prefix),
    databaseName(prefix, INCOMING_DATABASE),
  ];
}
