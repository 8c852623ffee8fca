/**
 * What each stage's function and queue are sized to, in one table a reader can hold on one
 * screen: records per invocation, Athena queries, invocations at once, memory, timeouts, and how
 * long a failing record takes to reach the dead-letter queue. Every number the services, the
 * event source mappings and the queues must agree on is derived here, from the context and the
 * project; infra/README.md ("Sizing") shows the arithmetic.
 */
import type { LargestFile } from './assets';
import { sizeMaximumConcurrency } from './athena-quota';
import { PIPELINE, queryBudget, STAGES, type StageName } from './pipeline';

/** Lambda's largest memory size. */
export const LAMBDA_MAX_MEMORY_MB = 10240;
/** What the landing function needs besides the files it holds: runtime, SDK clients, the project. */
export const LANDING_BASE_MEMORY_MB = 512;
/**
 * Memory per MiB of a landed file being read: the file's bytes (read whole), the Arrow columns
 * decoded from them (about as large again), and the Parquet written from those (at most as large
 * again).
 */
export const LANDING_MEMORY_PER_FILE_MB = 3;
/** Lambda memory is rounded up to a multiple of this. */
const MEMORY_STEP_MB = 64;
/**
 * FLOE_ATHENA_QUERY_TIMEOUT_SECONDS is the function's timeout minus this: time for the service to
 * stop the query it gave up on (StopQueryExecution) and answer the batch before Lambda ends the
 * invocation (which would leave the query running and the whole batch failed).
 */
export const QUERY_TIMEOUT_MARGIN_SECONDS = 60;
/**
 * The event source mappings gather no records: a batch is at most FLOE_BATCH_CONCURRENCY records,
 * which needs no window, and a window would only delay every record.
 */
export const MAX_BATCHING_WINDOW_SECONDS = 0;
/**
 * Visibility timeout / function timeout. AWS's general advice is 6, for a function that Lambda
 * throttles while it holds a batch; here the mapping's maximumConcurrency keeps Lambda from
 * taking more batches than it can run, so one spare timeout is enough, and the dead-letter time
 * stays short (see {@link StageSizing.deadLetterWithinSeconds}).
 */
export const VISIBILITY_TO_TIMEOUT = 2;
/** A record received this many times without success goes to the DLQ (two retries). */
export const MAX_RECEIVE_COUNT = 3;

/** One stage's sizes. */
export interface StageSizing {
  /** FLOE_BATCH_CONCURRENCY: records one invocation handles at once. */
  readonly recordsAtOnce: number;
  /**
   * The event source mapping's batchSize: the same number, so an invocation takes no more records
   * than it runs side by side (records of one table still run one after another), and a batch
   * that times out fails as few records as possible.
   */
  readonly batchSize: number;
  /** The event source mapping's maximumBatchingWindow, in seconds. */
  readonly maxBatchingWindowSeconds: number;
  /** FLOE_ATHENA_MAX_CONCURRENT_QUERIES: Athena queries one invocation runs at once, at most. */
  readonly queriesPerInvocation: number;
  /** The event source mapping's maximumConcurrency: invocations at once (Athena quota). */
  readonly maxConcurrency: number;
  /** The function's memory, in MB. */
  readonly memoryMb: number;
  /** The function's timeout, in seconds. */
  readonly timeoutSeconds: number;
  /** FLOE_ATHENA_QUERY_TIMEOUT_SECONDS: a query running longer is stopped. */
  readonly queryTimeoutSeconds: number;
  /** The queue's visibility timeout, in seconds. */
  readonly visibilityTimeoutSeconds: number;
  /** The queue's maxReceiveCount. */
  readonly maxReceiveCount: number;
  /**
   * The longest a record that fails every time stays in the queue once first received:
   * maxReceiveCount receives, each hiding it for the visibility timeout (a record that fails
   * fast is still hidden until then; one whose batch times out is too).
   */
  readonly deadLetterWithinSeconds: number;
}

/** Thrown when the project cannot be deployed as sized; the message says what to change. */
export class SizingError extends Error {}

/**
 * The landing function's files at once and memory. It reads each landed file whole and handles
 * up to `batchConcurrency` records (files) at once, so it needs
 * `base + files x perFile x max_file_mb`, rounded up to 64 MB, at least the stage's floor. When
 * that passes Lambda's largest memory, landing handles fewer files at once; when one file does
 * not fit, the synth stops and names the table.
 */
export function sizeLanding(
  largest: LargestFile,
  batchConcurrency: number,
  floorMb: number = PIPELINE.landing.memoryMb,
): { filesAtOnce: number; memoryMb: number } {
  const perFile = LANDING_MEMORY_PER_FILE_MB * largest.maxFileMb;
  const fits = Math.floor((LAMBDA_MAX_MEMORY_MB - LANDING_BASE_MEMORY_MB) / perFile);
  if (fits < 1) {
    const most = Math.floor((LAMBDA_MAX_MEMORY_MB - LANDING_BASE_MEMORY_MB) / LANDING_MEMORY_PER_FILE_MB);
    throw new SizingError(
      `${largest.file}: table ${largest.table} accepts files up to max_file_mb ${largest.maxFileMb} MiB, but the ` +
        `landing function holds a whole file in memory (${LANDING_MEMORY_PER_FILE_MB} x the file + ` +
        `${LANDING_BASE_MEMORY_MB} MB = ${LANDING_BASE_MEMORY_MB + perFile} MB), over Lambda's ` +
        `${LAMBDA_MAX_MEMORY_MB} MB: set max_file_mb to at most ${most} and split larger extracts.`,
    );
  }
  const filesAtOnce = Math.min(batchConcurrency, fits);
  const needed = LANDING_BASE_MEMORY_MB + filesAtOnce * perFile;
  const memoryMb = Math.max(floorMb, Math.ceil(needed / MEMORY_STEP_MB) * MEMORY_STEP_MB);
  return { filesAtOnce, memoryMb };
}

/** What the sizing reads from the context and the project. */
export interface SizingInputs {
  /** Context `batchConcurrency`. */
  readonly batchConcurrency: number;
  /** Context `athenaQueryQuota`. */
  readonly athenaQueryQuota: number;
  /** floe.yaml's `concurrency`. */
  readonly projectConcurrency: number;
  /** The project's largest `max_file_mb`. */
  readonly largestFile: LargestFile;
}

/** Every stage's sizes. */
export function sizeStages(inputs: SizingInputs): ReadonlyMap<StageName, StageSizing> {
  const landing = sizeLanding(inputs.largestFile, inputs.batchConcurrency);
  const budgets = new Map(
    STAGES.map((s) => {
      const records = PIPELINE[s].readsLanding ? landing.filesAtOnce : inputs.batchConcurrency;
      return [s, queryBudget(PIPELINE[s], records, inputs.projectConcurrency)] as const;
    }),
  );
  const maxConcurrency = sizeMaximumConcurrency(
    STAGES.map((s) => ({ name: s, queriesPerInvocation: budgets.get(s)!.queriesPerInvocation })),
    inputs.athenaQueryQuota,
  );
  return new Map(
    STAGES.map((s) => {
      const spec = PIPELINE[s];
      const budget = budgets.get(s)!;
      const visibilityTimeoutSeconds = VISIBILITY_TO_TIMEOUT * spec.timeoutSeconds + MAX_BATCHING_WINDOW_SECONDS;
      const sizing: StageSizing = {
        recordsAtOnce: budget.batchConcurrency,
        batchSize: budget.batchConcurrency,
        maxBatchingWindowSeconds: MAX_BATCHING_WINDOW_SECONDS,
        queriesPerInvocation: budget.queriesPerInvocation,
        maxConcurrency: maxConcurrency.get(s)!,
        memoryMb: spec.readsLanding ? landing.memoryMb : spec.memoryMb,
        timeoutSeconds: spec.timeoutSeconds,
        queryTimeoutSeconds: spec.timeoutSeconds - QUERY_TIMEOUT_MARGIN_SECONDS,
        visibilityTimeoutSeconds,
        maxReceiveCount: MAX_RECEIVE_COUNT,
        deadLetterWithinSeconds: MAX_RECEIVE_COUNT * visibilityTimeoutSeconds,
      };
      return [s, sizing] as const;
    }),
  );
}
