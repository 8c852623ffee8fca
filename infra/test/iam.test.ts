/**
 * Least privilege: no wildcard action anywhere, every resource scoped, and each function holding
 * only what its stage needs (its queues, its layers, its buckets).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Template } from 'aws-cdk-lib/assertions';
import type { FloeStack } from '../lib/floe-stack';
import { databaseName, databasesOf, INCOMING_DATABASE, PIPELINE, STAGES, type StageName } from '../lib/pipeline';
import { type FlatStatement, logicalId, roleStatements, synth } from './helpers';

let stack: FloeStack;
let template: Template;

before(() => {
  ({ stack, template } = synth());
});

const statementsOf = (stage: StageName) => roleStatements(template, logicalId(stack.functions.get(stage)!.role));

/** Resources granted an action, across the statements. */
const resourcesFor = (statements: FlatStatement[], action: string) =>
  new Set(statements.filter((s) => s.effect === 'Allow' && s.actions.includes(action)).flatMap((s) => s.resources));

/** `<LogicalId.Arn>` as a flattened resource names it. */
const arnOf = (construct: Parameters<typeof logicalId>[0]) => `<${logicalId(construct)}.Arn>`;

const sorted = (xs: Iterable<string>) => [...xs].sort();

describe('every IAM policy in the stack', () => {
  const everyStatement = () =>
    ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].flatMap((type) =>
      Object.entries<any>(template.findResources(type)).flatMap(([id, p]) =>
        p.Properties.PolicyDocument.Statement.map((s: any) => ({ id, s })),
      ),
    );

  it('exists only for the four function roles, and no role has an AWS managed policy', () => {
    const roles = Object.entries<any>(template.findResources('AWS::IAM::Role'));
    assert.equal(roles.length, STAGES.length);
    for (const [id, r] of roles) assert.equal(r.Properties.ManagedPolicyArns, undefined, id);
    assert.ok(everyStatement().length > 0);
  });

  it('names no wildcard action', () => {
    for (const { id, s } of everyStatement()) {
      for (const action of [].concat(s.Action)) {
        assert.ok(!String(action).includes('*'), `${id}: ${action}`);
      }
      assert.equal(s.NotAction, undefined, id);
    }
  });

  it('scopes every resource: no bare "*", and a wildcard only ends an ARN under a named prefix', () => {
    for (const stage of STAGES) {
      for (const s of statementsOf(stage)) {
        assert.notEqual(s.raw.length, 0, `${stage} ${s.sid}: no resource`);
        for (const r of s.resources) {
          assert.notEqual(r, '*', `${stage} ${s.sid}`);
          if (!r.includes('*')) continue;
          assert.match(
            r,
            /^(<Storage(Lake|AthenaResults|Landing|Quarantine)[0-9A-F]{8}\.Arn>\/[a-z_]+(\/[a-z_]+){0,3}\/\*|arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table\/[a-z_]+\/\*)$/,
            `${stage} ${s.sid}: ${r}`,
          );
        }
      }
    }
  });
});

describe('queues', () => {
  it('each function sends only to the queues of its next stages and to its own DLQ', () => {
    for (const stage of STAGES) {
      const expected = [
        ...PIPELINE[stage].sendsTo.map((n) => arnOf(stack.queues.get(n)!.queue)),
        arnOf(stack.queues.get(stage)!.deadLetterQueue),
      ];
      assert.deepEqual(sorted(resourcesFor(statementsOf(stage), 'sqs:SendMessage')), sorted(expected), stage);
    }
  });

  it('landing holds no permission at all on the modelling or audit queues, nor on another stage\'s DLQ', () => {
    const landing = statementsOf('landing').flatMap((s) => s.resources);
    const foreign = [
      stack.queues.get('modelling')!.queue,
      stack.queues.get('audit')!.queue,
      ...STAGES.filter((s) => s !== 'landing').map((s) => stack.queues.get(s)!.deadLetterQueue),
    ].map(arnOf);
    for (const q of foreign) assert.ok(!landing.includes(q), `landing may touch ${q}`);
  });

  it('each function receives and deletes from its own queue only', () => {
    for (const stage of STAGES) {
      for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']) {
        assert.deepEqual(sorted(resourcesFor(statementsOf(stage), action)), [arnOf(stack.queues.get(stage)!.queue)], `${stage} ${action}`);
      }
    }
  });
});

describe('the lake', () => {
  const glueTables = (dbs: string[]) =>
    dbs.map((d) => `arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/${d}/*`);
  const prefix = () => stack.catalog.databasePrefix;
  const incomingOf = (stage: StageName) =>
    PIPELINE[stage].writesIncomingRows ? [databaseName(prefix(), INCOMING_DATABASE)] : [];
  const written = (stage: StageName) => {
    const spec = PIPELINE[stage];
    return spec.writes.flatMap((l) => databasesOf(l, stack.sources, prefix()));
  };
  const read = (stage: StageName) => {
    const spec = PIPELINE[stage];
    return [...new Set([...spec.reads.flatMap((l) => databasesOf(l, stack.sources, prefix())), ...written(stage)])];
  };

  it('name the databases as they are on AWS: with the stage prefix (floe_dev_ in dev)', () => {
    assert.equal(prefix(), 'floe_dev_');
    const landingTables = [...resourcesFor(statementsOf('landing'), 'glue:CreateTable')].filter((r) => r.includes(':table/'));
    assert.deepEqual(sorted(landingTables), sorted(glueTables(['floe_dev_bronze_crm', 'floe_dev_bronze_nomis', 'floe_dev_floe_incoming'])));
    const lake = arnOf(stack.storage.lake);
    assert.ok(resourcesFor(statementsOf('modelling'), 's3:PutObject').has(`${lake}/warehouse/floe_dev_gold/*`));
    assert.ok(resourcesFor(statementsOf('modelling'), 's3:PutObject').has(`${lake}/warehouse/_floe/published/floe_dev_gold/*`));
  });

  it('each function creates and changes Glue tables only in the databases of the layers it writes', () => {
    for (const stage of STAGES) {
      const incoming = incomingOf(stage);
      for (const action of ['glue:CreateTable', 'glue:UpdateTable', 'glue:DeleteTable']) {
        const tables = [...resourcesFor(statementsOf(stage), action)].filter((r) => r.includes(':table/'));
        assert.deepEqual(sorted(tables), sorted(glueTables([...written(stage), ...incoming])), `${stage} ${action}`);
      }
    }
    // Spelled out for the stages people ask about.
    const landingWrites = [...resourcesFor(statementsOf('landing'), 'glue:UpdateTable')].join(' ');
    assert.ok(!/silver_|gold|floe_audit/.test(landingWrites), landingWrites);
    const modellingWrites = [...resourcesFor(statementsOf('modelling'), 'glue:UpdateTable')].join(' ');
    assert.ok(!/bronze_|silver_/.test(modellingWrites), modellingWrites);
  });

  it('each function reads Glue tables only in the databases it reads or writes', () => {
    for (const stage of STAGES) {
      const incoming = incomingOf(stage);
      const tables = [...resourcesFor(statementsOf(stage), 'glue:GetTable')].filter((r) => r.includes(':table/'));
      assert.deepEqual(sorted(tables), sorted(glueTables([...read(stage), ...incoming])), stage);
    }
  });

  it('each function writes lake objects only under its databases, their publish records and (if it stages rows) _floe/incoming', () => {
    const lake = arnOf(stack.storage.lake);
    for (const stage of STAGES) {
      const puts = [...resourcesFor(statementsOf(stage), 's3:PutObject')].filter((r) => r.startsWith(lake));
      const expected = written(stage).flatMap((d) => [`${lake}/warehouse/${d}/*`, `${lake}/warehouse/_floe/published/${d}/*`]);
      if (PIPELINE[stage].writesIncomingRows) expected.push(`${lake}/warehouse/_floe/incoming/*`);
      assert.deepEqual(sorted(puts), sorted(expected), stage);
    }
  });

  it('Athena queries run in the floe workgroup only', () => {
    for (const stage of STAGES) {
      for (const action of ['athena:StartQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution']) {
        assert.deepEqual(
          [...resourcesFor(statementsOf(stage), action)],
          ['arn:<AWS::Partition>:athena:<AWS::Region>:<AWS::AccountId>:workgroup/floe-dev'],
          `${stage} ${action}`,
        );
      }
    }
  });
});

describe('files and events', () => {
  it('only landing reads landed files and writes quarantine, each under its prefix', () => {
    const landing = arnOf(stack.storage.landing);
    const quarantine = arnOf(stack.storage.quarantine);
    for (const stage of STAGES) {
      const all = statementsOf(stage).flatMap((s) => s.resources);
      const touchesLanding = all.some((r) => r.startsWith(landing));
      const touchesQuarantine = all.some((r) => r.startsWith(quarantine));
      assert.equal(touchesLanding, stage === 'landing', `${stage} landing bucket`);
      assert.equal(touchesQuarantine, stage === 'landing', `${stage} quarantine bucket`);
    }
    const landingStatements = statementsOf('landing');
    assert.deepEqual([...resourcesFor(landingStatements, 's3:GetObject')].filter((r) => r.startsWith(landing)), [`${landing}/landing/*`]);
    assert.deepEqual([...resourcesFor(landingStatements, 's3:PutObject')].filter((r) => r.startsWith(quarantine)), [`${quarantine}/quarantine/*`]);
    assert.equal([...resourcesFor(landingStatements, 's3:PutObject')].filter((r) => r.startsWith(landing)).length, 0);
  });

  it('every function puts events on the default bus only, and uses the data key only', () => {
    for (const stage of STAGES) {
      const statements = statementsOf(stage);
      assert.deepEqual([...resourcesFor(statements, 'events:PutEvents')], [
        'arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default',
      ]);
      assert.deepEqual([...resourcesFor(statements, 'kms:GenerateDataKey')], [arnOf(stack.storage.key)]);
      assert.deepEqual([...resourcesFor(statements, 'logs:PutLogEvents')], [arnOf(stack.functions.get(stage)!.logGroup)]);
    }
  });
});
