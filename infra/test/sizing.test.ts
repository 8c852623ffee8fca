/**
 * The sizes of each stage (lib/sizing.ts): landing's memory from the project's largest
 * max_file_mb, the Athena query timeout under each function's timeout, the SQS batch and retry
 * timing that bounds how long a failing record takes to reach its DLQ, and the Athena query
 * budget the services enforce, consistent with the quota sizing.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import { AssetError, DEFAULT_MAX_FILE_MB, readLargestFile, readProjectConcurrency } from '../lib/assets';
import type { FloeStack } from '../lib/floe-stack';
import { STAGES, type StageName } from '../lib/pipeline';
import {
  LAMBDA_MAX_MEMORY_MB,
  LANDING_BASE_MEMORY_MB,
  LANDING_MEMORY_PER_FILE_MB,
  QUERY_TIMEOUT_MARGIN_SECONDS,
  sizeLanding,
  SizingError,
} from '../lib/sizing';
import { FIXTURE_PROJECT, logicalId, makeAssets, synth, tempDir } from './helpers';

/** The Rust default of an Athena query's timeout (shared/aws/src/athena.rs `Pacing::default`). */
const RUST_DEFAULT_QUERY_TIMEOUT_SECONDS = 15 * 60;

const largest = (maxFileMb: number) => ({ maxFileMb, table: 'nomis.people', file: 'tables/nomis.yaml' });

/** A copy of the fixture project whose nomis.people accepts files up to `mb` MiB. */
function projectAccepting(mb: number): string {
  const dir = tempDir('project');
  fs.cpSync(FIXTURE_PROJECT, dir, { recursive: true });
  const file = path.join(dir, 'tables', 'nomis.yaml');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('load: full', `load: full\n    max_file_mb: ${mb}`));
  return dir;
}

let stack: FloeStack;
let template: Template;
before(() => {
  ({ stack, template } = synth());
});

const functionOf = (t: Template, s: FloeStack, stage: StageName) =>
  t.toJSON().Resources[logicalId(s.functions.get(stage)!.function)].Properties;
const mappingOf = (t: Template, s: FloeStack, stage: StageName) =>
  Object.values<any>(t.findResources('AWS::Lambda::EventSourceMapping')).find(
    (m) => m.Properties.FunctionName.Ref === logicalId(s.functions.get(stage)!.function),
  ).Properties;
const queueOf = (t: Template, s: FloeStack, stage: StageName) =>
  t.toJSON().Resources[logicalId(s.queues.get(stage)!.queue)].Properties;

describe('landing memory', () => {
  it('is the base plus 3x the largest max_file_mb per file at once, rounded up to 64 MB, at least 1024', () => {
    assert.deepEqual(sizeLanding(largest(1024), 2), { filesAtOnce: 2, memoryMb: 512 + 2 * 3 * 1024 });
    assert.deepEqual(sizeLanding(largest(100), 2), { filesAtOnce: 2, memoryMb: 1152 });
    assert.deepEqual(sizeLanding(largest(10), 2), { filesAtOnce: 2, memoryMb: 1024 });
  });

  it('handles fewer files at once when batchConcurrency of them would not fit in 10240 MB', () => {
    assert.deepEqual(sizeLanding(largest(1024), 4), { filesAtOnce: 3, memoryMb: 512 + 3 * 3 * 1024 });
    assert.deepEqual(sizeLanding(largest(2000), 2), { filesAtOnce: 1, memoryMb: 6528 });
    for (let mb = 1; mb <= 3242; mb += 37) {
      for (let batch = 1; batch <= 8; batch++) {
        const { filesAtOnce, memoryMb } = sizeLanding(largest(mb), batch);
        assert.ok(filesAtOnce >= 1 && filesAtOnce <= batch, `${mb} MiB x ${batch}: ${filesAtOnce} files`);
        assert.ok(memoryMb <= LAMBDA_MAX_MEMORY_MB, `${mb} MiB x ${batch}: ${memoryMb} MB`);
        assert.ok(memoryMb >= LANDING_BASE_MEMORY_MB + filesAtOnce * LANDING_MEMORY_PER_FILE_MB * mb);
        // As many files as fit: one more would not.
        if (filesAtOnce < batch) {
          assert.ok(LANDING_BASE_MEMORY_MB + (filesAtOnce + 1) * LANDING_MEMORY_PER_FILE_MB * mb > LAMBDA_MAX_MEMORY_MB);
        }
      }
    }
  });

  it('stops the synth, naming the table, its file and the largest max_file_mb that fits, when one file cannot fit', () => {
    assert.throws(
      () => sizeLanding(largest(3243), 1),
      (e: Error) =>
        e instanceof SizingError &&
        e.message.includes('tables/nomis.yaml') &&
        e.message.includes('nomis.people') &&
        /max_file_mb 3243/.test(e.message) &&
        /at most 3242/.test(e.message),
    );
    assert.throws(() => synth({}, makeAssets(projectAccepting(5000))), /nomis\.yaml: table nomis\.people accepts files up to max_file_mb 5000/);
  });

  it('follows the project: the fixture (no max_file_mb, so 1024) and a table accepting 2000 MiB', () => {
    assert.equal(functionOf(template, stack, 'landing').MemorySize, 512 + 2 * 3 * DEFAULT_MAX_FILE_MB);
    for (const stage of ['standardise', 'audit', 'modelling'] as const) {
      assert.equal(functionOf(template, stack, stage).MemorySize, 1024, stage);
    }
    const big = synth({}, makeAssets(projectAccepting(2000)));
    const landing = functionOf(big.template, big.stack, 'landing');
    assert.equal(landing.MemorySize, 6528);
    assert.equal(landing.Environment.Variables.FLOE_BATCH_CONCURRENCY, '1');
    assert.equal(landing.Environment.Variables.FLOE_ATHENA_MAX_CONCURRENT_QUERIES, '1');
    assert.equal(mappingOf(big.template, big.stack, 'landing').BatchSize, 1);
    assert.equal(functionOf(big.template, big.stack, 'standardise').Environment.Variables.FLOE_BATCH_CONCURRENCY, '2');
  });

  it('reads the largest max_file_mb of tables/*.yaml (1024 when unset) and refuses a bad one', () => {
    assert.deepEqual(
      { mb: readLargestFile(FIXTURE_PROJECT).maxFileMb, table: readLargestFile(FIXTURE_PROJECT).table },
      { mb: DEFAULT_MAX_FILE_MB, table: 'crm.accounts' },
    );
    const found = readLargestFile(projectAccepting(1500));
    assert.equal(found.maxFileMb, 1500);
    assert.equal(found.table, 'nomis.people');
    assert.match(found.file, /nomis\.yaml$/);
    assert.throws(
      () => readLargestFile(projectAccepting(0)),
      (e: Error) => e instanceof AssetError && /nomis\.yaml: table people: 'max_file_mb' must be a positive integer/.test(e.message),
    );
  });
});

describe('FLOE_ATHENA_QUERY_TIMEOUT_SECONDS', () => {
  it('is on every function, the function timeout minus 60 s, so a query is stopped before Lambda ends the invocation', () => {
    for (const stage of STAGES) {
      const fn = functionOf(template, stack, stage);
      const value = fn.Environment.Variables.FLOE_ATHENA_QUERY_TIMEOUT_SECONDS;
      assert.match(value, /^[1-9][0-9]*$/, stage);
      assert.equal(Number(value), fn.Timeout - QUERY_TIMEOUT_MARGIN_SECONDS, stage);
      assert.ok(Number(value) <= fn.Timeout - 30 && Number(value) >= fn.Timeout - 60, stage);
    }
    // Landing's 300 s timeout is what the Rust default (900 s) overran.
    assert.equal(functionOf(template, stack, 'landing').Timeout, 300);
    assert.equal(functionOf(template, stack, 'landing').Environment.Variables.FLOE_ATHENA_QUERY_TIMEOUT_SECONDS, '240');
    assert.ok(240 < RUST_DEFAULT_QUERY_TIMEOUT_SECONDS);
    assert.equal(functionOf(template, stack, 'audit').Environment.Variables.FLOE_ATHENA_QUERY_TIMEOUT_SECONDS, '840');
  });
});

describe('a record that keeps failing', () => {
  it('reaches its DLQ within maxReceiveCount x visibility timeout: 30 min for landing, 90 min for the others', () => {
    const bound = (stage: StageName) => {
      const q = queueOf(template, stack, stage);
      return q.RedrivePolicy.maxReceiveCount * q.VisibilityTimeout;
    };
    assert.equal(bound('landing'), 3 * 600);
    for (const stage of ['standardise', 'audit', 'modelling'] as const) assert.equal(bound(stage), 3 * 1800, stage);
    for (const stage of STAGES) {
      assert.equal(stack.sizing.get(stage)!.deadLetterWithinSeconds, bound(stage), stage);
      assert.ok(bound(stage) <= 90 * 60, `${stage}: ${bound(stage)} s`);
    }
  });

  it('fails at most the records that ran beside it: a batch is what one invocation runs at once', () => {
    for (const stage of STAGES) {
      const m = mappingOf(template, stack, stage);
      const env = functionOf(template, stack, stage).Environment.Variables;
      assert.equal(m.BatchSize, Number(env.FLOE_BATCH_CONCURRENCY), stage);
      assert.ok(m.BatchSize <= 10, stage);
      assert.equal(m.MaximumBatchingWindowInSeconds ?? 0, 0, stage);
    }
  });
});

describe('FLOE_ATHENA_MAX_CONCURRENT_QUERIES', () => {
  it('is what the quota sizing gave each invocation, and covers what one invocation runs', () => {
    const projectConcurrency = readProjectConcurrency(FIXTURE_PROJECT);
    let inFlight = 0;
    for (const stage of STAGES) {
      const env = functionOf(template, stack, stage).Environment.Variables;
      const m = mappingOf(template, stack, stage);
      const sizing = stack.sizing.get(stage)!;
      const budget = Number(env.FLOE_ATHENA_MAX_CONCURRENT_QUERIES);
      assert.equal(budget, sizing.queriesPerInvocation, stage);
      assert.equal(m.ScalingConfig.MaximumConcurrency, sizing.maxConcurrency, stage);
      // Every record of a batch can run its query at once; modelling's one record runs the
      // project's concurrency of models.
      assert.equal(budget, stage === 'modelling' ? projectConcurrency : m.BatchSize, stage);
      inFlight += budget * m.ScalingConfig.MaximumConcurrency;
    }
    assert.ok(inFlight <= 20, `${inFlight} queries in flight over the default quota of 20`);
  });
});
