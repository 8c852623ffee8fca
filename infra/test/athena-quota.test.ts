/**
 * The event source mappings' maximumConcurrency keeps the pipeline within Athena's
 * concurrent-query quota.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AthenaQuotaError,
  MIN_MAXIMUM_CONCURRENCY,
  sizeMaximumConcurrency,
} from '../lib/athena-quota';
import { readProjectConcurrency } from '../lib/assets';
import { STAGES } from '../lib/pipeline';
import { FIXTURE_PROJECT, logicalId, synth } from './helpers';

const consumers = (perInvocation: number) => STAGES.map((name) => ({ name, queriesPerInvocation: perInvocation }));

const queriesInFlight = (sizes: Map<string, number>, perInvocation: number) =>
  [...sizes.values()].reduce((sum, n) => sum + n * perInvocation, 0);

describe('sizeMaximumConcurrency', () => {
  it('stays at or under the quota, gives every function the floor, and leaves less than one invocation unused', () => {
    for (let quota = 8; quota <= 200; quota += 3) {
      for (let perInvocation = 1; perInvocation <= 6; perInvocation++) {
        if (STAGES.length * MIN_MAXIMUM_CONCURRENCY * perInvocation > quota) continue;
        const sizes = sizeMaximumConcurrency(consumers(perInvocation), quota);
        const used = queriesInFlight(sizes, perInvocation);
        assert.ok(used <= quota, `quota ${quota}, ${perInvocation} per invocation: ${used} in flight`);
        assert.ok(quota - used < perInvocation, `quota ${quota}: ${quota - used} queries left unused`);
        for (const [name, n] of sizes) assert.ok(n >= MIN_MAXIMUM_CONCURRENCY, `${name}: ${n}`);
        const values = [...sizes.values()];
        assert.ok(Math.max(...values) - Math.min(...values) <= 1, `uneven split ${values}`);
      }
    }
  });

  it('refuses a quota that cannot hold every function at the floor, saying what to change', () => {
    assert.throws(
      () => sizeMaximumConcurrency(consumers(4), 20),
      (e: Error) =>
        e instanceof AthenaQuotaError &&
        /athenaQueryQuota=20/.test(e.message) &&
        /32 queries/.test(e.message) &&
        /batchConcurrency/.test(e.message),
    );
  });
});

describe('the synthesized event source mappings', () => {
  /** The fixture project's floe.yaml `concurrency`: what one modelling record runs at once. */
  const projectConcurrency = readProjectConcurrency(FIXTURE_PROJECT);

  for (const [quota, batch] of [
    [20, 2],
    [25, 1],
    [150, 4],
  ] as const) {
    it(`keep sum(maximumConcurrency x Athena queries per invocation) within athenaQueryQuota=${quota} (batchConcurrency=${batch})`, () => {
      const { stack, template } = synth({ athenaQueryQuota: quota, batchConcurrency: batch });
      const functions = template.findResources('AWS::Lambda::Function');
      const mappings = Object.values<any>(template.findResources('AWS::Lambda::EventSourceMapping'));
      assert.equal(mappings.length, STAGES.length);
      let inFlight = 0;
      for (const m of mappings) {
        const fn = functions[m.Properties.FunctionName.Ref];
        const env = fn.Properties.Environment.Variables;
        const records = Number(env.FLOE_BATCH_CONCURRENCY);
        const budget = Number(env.FLOE_ATHENA_MAX_CONCURRENT_QUERIES);
        // What an invocation can really run: records side by side, each one query at a time,
        // except modelling, whose one record runs the project's concurrency of models.
        const modelling = m.Properties.FunctionName.Ref === logicalId(stack.functions.get('modelling')!.function);
        const landing = m.Properties.FunctionName.Ref === logicalId(stack.functions.get('landing')!.function);
        const runs = modelling ? records * projectConcurrency : records;
        // Landing may handle fewer files at once than batchConcurrency, when its memory cannot
        // hold more (sizing.ts).
        if (landing) assert.ok(records >= 1 && records <= batch, `landing ${records}`);
        else assert.equal(records, modelling ? 1 : batch);
        // The mapping hands over as many records as the function runs at once.
        assert.equal(m.Properties.BatchSize, records);
        assert.ok(budget >= runs, `${fn.Properties.FunctionName}: budget ${budget} under ${runs} queries`);
        const max = m.Properties.ScalingConfig.MaximumConcurrency;
        assert.ok(max >= MIN_MAXIMUM_CONCURRENCY);
        inFlight += max * budget;
      }
      assert.ok(inFlight <= quota, `${inFlight} queries in flight over the quota ${quota}`);
    });
  }

  it('fail the synth with a clear error when the quota is too small', () => {
    assert.throws(() => synth({ athenaQueryQuota: 10, batchConcurrency: 2 }), /cannot hold the pipeline/);
  });
});
