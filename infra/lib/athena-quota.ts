/**
 * Sizing the event source mappings against Athena's concurrent-query quota.
 *
 * Every invocation of a stage's function handles one SQS batch and runs a bounded number of
 * Athena queries at once (see `queryBudget` in pipeline.ts: FLOE_BATCH_CONCURRENCY records of one
 * query each, or for modelling one record running the project's `concurrency`). The event source
 * mapping's `maximumConcurrency` bounds how many invocations run at once, so the pipeline can
 * have at most sum(maximumConcurrency x queries per invocation) queries in flight. Keeping that at or
 * under the account's quota of active DML queries means floe itself never makes Athena queue or
 * throttle its queries (TooManyRequestsException); other users of the account share the rest.
 */

/** AWS's smallest `maximumConcurrency` for an SQS event source mapping. */
export const MIN_MAXIMUM_CONCURRENCY = 2;
/** AWS's largest `maximumConcurrency` for an SQS event source mapping. */
export const MAX_MAXIMUM_CONCURRENCY = 1000;

/** One function to size. */
export interface QueryConsumer {
  /** Its name (stage). */
  readonly name: string;
  /** Athena queries one invocation runs at most at once. */
  readonly queriesPerInvocation: number;
}

/** Thrown when the quota cannot hold every function at AWS's floor. */
export class AthenaQuotaError extends Error {}

/**
 * The `maximumConcurrency` of each consumer, so that the sum of
 * (maximumConcurrency x queriesPerInvocation) is at most `quota`. Every consumer gets the floor
 * (2); what is left is handed out one invocation at a time, round robin in the given order
 * (earlier stages first: landing is where a burst of files arrives).
 */
export function sizeMaximumConcurrency(
  consumers: readonly QueryConsumer[],
  quota: number,
): Map<string, number> {
  if (!Number.isInteger(quota) || quota < 1) {
    throw new AthenaQuotaError(`athenaQueryQuota must be a positive integer, got ${quota}`);
  }
  for (const c of consumers) {
    if (!Number.isInteger(c.queriesPerInvocation) || c.queriesPerInvocation < 1) {
      throw new AthenaQuotaError(
        `${c.name}: queries per invocation must be a positive integer, got ${c.queriesPerInvocation}`,
      );
    }
  }
  const sizes = new Map(consumers.map((c) => [c.name, MIN_MAXIMUM_CONCURRENCY]));
  let used = consumers.reduce((sum, c) => sum + MIN_MAXIMUM_CONCURRENCY * c.queriesPerInvocation, 0);
  if (used > quota) {
    const detail = consumers
      .map((c) => `${c.name} ${MIN_MAXIMUM_CONCURRENCY} x ${c.queriesPerInvocation}`)
      .join(' + ');
    throw new AthenaQuotaError(
      `the Athena concurrent-query quota (athenaQueryQuota=${quota}) cannot hold the pipeline: ` +
        `at AWS's smallest event source mapping maximumConcurrency (${MIN_MAXIMUM_CONCURRENCY}) ` +
        `the ${consumers.length} functions run up to ${detail} = ${used} queries at once. ` +
        `Lower batchConcurrency (FLOE_BATCH_CONCURRENCY) or floe.yaml's concurrency (modelling), or raise the account's "Active DML queries" ` +
        `quota in Service Quotas and pass it with -c athenaQueryQuota=N.`,
    );
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const c of consumers) {
      const current = sizes.get(c.name)!;
      if (current < MAX_MAXIMUM_CONCURRENCY && used + c.queriesPerInvocation <= quota) {
        sizes.set(c.name, current + 1);
        used += c.queriesPerInvocation;
        grew = true;
      }
    }
  }
  return sizes;
}
