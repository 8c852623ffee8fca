/**
 * The resources of the stack and how they are wired: buckets, the landing rule, queues,
 * functions and their environment, event source mappings, Athena, Glue, monitoring, outputs,
 * and what changes between dev and prod.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { OUTPUTS, type FloeStack } from '../lib/floe-stack';
import { PIPELINE, STAGES, queueUrlVariable } from '../lib/pipeline';
import { PROJECT_DIR_IN_LAMBDA } from '../lib/stage-function';
import { logicalId, synth } from './helpers';

let stack: FloeStack;
let template: Template;

before(() => {
  ({ stack, template } = synth({ stage: 'dev' }));
});

const resourcesOf = (type: string) => Object.entries<any>(template.findResources(type));

describe('buckets', () => {
  const dataBuckets = () => {
    const s = stack.storage;
    return { landing: s.landing, lake: s.lake, results: s.results, quarantine: s.quarantine };
  };

  it('encrypt the four data buckets with the stack key, block public access and log access', () => {
    const keyId = logicalId(stack.storage.key);
    for (const [name, bucket] of Object.entries(dataBuckets())) {
      const props = template.toJSON().Resources[logicalId(bucket)].Properties;
      assert.deepEqual(
        props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault,
        { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] } },
        name,
      );
      assert.deepEqual(
        props.PublicAccessBlockConfiguration,
        { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        name,
      );
      assert.deepEqual(props.LoggingConfiguration.DestinationBucketName, { Ref: logicalId(stack.storage.accessLogs) }, name);
    }
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
  });

  it('refuse plain HTTP on every bucket', () => {
    const buckets = resourcesOf('AWS::S3::Bucket');
    assert.equal(buckets.length, 5);
    const policies = resourcesOf('AWS::S3::BucketPolicy');
    for (const [id] of buckets) {
      const policy = policies.find(([, p]) => p.Properties.Bucket.Ref === id);
      assert.ok(policy, `${id} has no bucket policy`);
      const denies = policy[1].Properties.PolicyDocument.Statement.filter(
        (s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      );
      assert.equal(denies.length, 1, `${id} does not refuse plain HTTP`);
    }
  });

  it('version landing and send its events to EventBridge; expire Athena results', () => {
    const landing = template.toJSON().Resources[logicalId(stack.storage.landing)].Properties;
    assert.equal(landing.VersioningConfiguration.Status, 'Enabled');
    assert.deepEqual(landing.NotificationConfiguration, { EventBridgeConfiguration: { EventBridgeEnabled: true } });
    const results = template.toJSON().Resources[logicalId(stack.storage.results)].Properties;
    assert.ok(
      results.LifecycleConfiguration.Rules.some((r: any) => r.Status === 'Enabled' && r.ExpirationInDays > 0),
      'results never expire',
    );
    // Nothing else is versioned, and no custom resource stands in for bucket settings.
    for (const b of [stack.storage.lake, stack.storage.results, stack.storage.quarantine]) {
      assert.equal(template.toJSON().Resources[logicalId(b)].Properties.VersioningConfiguration, undefined);
    }
    assert.equal(resourcesOf('Custom::S3BucketNotifications').length, 0);
  });
});

describe('the landing rule', () => {
  it('sends S3 "Object Created" under landing/ in the landing bucket to the landing queue', () => {
    const landing = stack.queues.get('landing')!;
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: {
          bucket: { name: [{ Ref: logicalId(stack.storage.landing) }] },
          object: { key: [{ prefix: 'landing/' }] },
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(landing.queue), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(landing.deadLetterQueue), 'Arn'] } },
        }),
      ],
    });
  });

  it('is allowed by the landing queue policy to send, from this stack\'s rules only', () => {
    const landing = stack.queues.get('landing')!;
    const policy = resourcesOf('AWS::SQS::QueuePolicy').find(([, p]) =>
      p.Properties.Queues.some((q: any) => q.Ref === logicalId(landing.queue)),
    );
    assert.ok(policy);
    const allows = policy[1].Properties.PolicyDocument.Statement.filter((s: any) => s.Effect === 'Allow');
    assert.equal(allows.length, 2, 'the landed-files rule and the reconcile rule');
    for (const allow of allows) {
      assert.equal(allow.Principal.Service, 'events.amazonaws.com');
      assert.ok(([] as string[]).concat(allow.Action).includes('sqs:SendMessage'));
      assert.ok(allow.Condition.ArnEquals['aws:SourceArn'], 'any rule could send');
    }
  });

  it('reconciles the landing zone with the file ledger every hour', () => {
    const landing = stack.queues.get('landing')!;
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(landing.queue), 'Arn'] },
          Input: JSON.stringify({ floe: 'reconcile' }),
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(landing.deadLetterQueue), 'Arn'] } },
        }),
      ],
    });
  });
});

describe('table maintenance', () => {
  it('sends {"maintain": "all"} to the modelling queue every day, undeliverable ones to its DLQ', () => {
    const modelling = stack.queues.get('modelling')!;
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 3 * * ? *)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(modelling.queue), 'Arn'] },
          Input: JSON.stringify({ maintain: 'all' }),
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(modelling.deadLetterQueue), 'Arn'] } },
        }),
      ],
    });
    // Its failures raise the modelling alarms (dead letters, function errors).
    const alarms = resourcesOf('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties.AlarmName);
    for (const name of ['floe-dev-modelling-dead-letters', 'floe-dev-modelling-function-errors']) {
      assert.ok(alarms.includes(name), `${name} in ${alarms}`);
    }
  });

  it('is left out with maintenanceSchedule=off', () => {
    const off = synth({ stage: 'dev', maintenanceSchedule: 'off' });
    const rules = Object.values(off.template.toJSON().Resources as Record<string, any>).filter(
      (r) => r.Type === 'AWS::Events::Rule' && r.Properties.Name === 'floe-dev-table-maintenance',
    );
    assert.equal(rules.length, 0);
  });
});

describe('queues', () => {
  it('give every stage a queue with a DLQ, encryption and SSL only', () => {
    for (const stage of STAGES) {
      const q = stack.queues.get(stage)!;
      const props = template.toJSON().Resources[logicalId(q.queue)].Properties;
      assert.equal(props.QueueName, `floe-dev-${stage}`);
      assert.deepEqual(props.RedrivePolicy.deadLetterTargetArn, { 'Fn::GetAtt': [logicalId(q.deadLetterQueue), 'Arn'] });
      assert.ok(props.RedrivePolicy.maxReceiveCount >= 1);
      assert.equal(props.SqsManagedSseEnabled, true);
      const dlq = template.toJSON().Resources[logicalId(q.deadLetterQueue)].Properties;
      assert.equal(dlq.SqsManagedSseEnabled, true);
      assert.equal(dlq.QueueName, `floe-dev-${stage}-dlq`);
    }
    assert.equal(resourcesOf('AWS::SQS::Queue').length, STAGES.length * 2);
    for (const [, p] of resourcesOf('AWS::SQS::QueuePolicy')) {
      assert.ok(
        p.Properties.PolicyDocument.Statement.some(
          (s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
        ),
      );
    }
    assert.equal(resourcesOf('AWS::SQS::QueuePolicy').length, STAGES.length * 2);
  });

  it('hide a received message for twice the consuming function\'s timeout, and dead-letter after 3 receives', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    const queues = template.findResources('AWS::SQS::Queue');
    for (const [, m] of resourcesOf('AWS::Lambda::EventSourceMapping')) {
      const queue = queues[m.Properties.EventSourceArn['Fn::GetAtt'][0]];
      const fn = functions[m.Properties.FunctionName.Ref];
      const window = m.Properties.MaximumBatchingWindowInSeconds ?? 0;
      // Lambda refuses a mapping whose queue hides a record for less than the function may run.
      assert.ok(queue.Properties.VisibilityTimeout >= fn.Properties.Timeout + window, queue.Properties.QueueName);
      assert.equal(queue.Properties.VisibilityTimeout, 2 * fn.Properties.Timeout + window, queue.Properties.QueueName);
      assert.equal(queue.Properties.RedrivePolicy.maxReceiveCount, 3, queue.Properties.QueueName);
    }
  });
});

describe('functions', () => {
  it('are four, on provided.al2023 arm64, from their own artifact folders', () => {
    const functions = resourcesOf('AWS::Lambda::Function');
    assert.equal(functions.length, STAGES.length);
    for (const [, f] of functions) {
      assert.equal(f.Properties.Runtime, 'provided.al2023');
      assert.deepEqual(f.Properties.Architectures, ['arm64']);
      assert.equal(f.Properties.Handler, 'bootstrap');
    }
    for (const stage of STAGES) {
      const f = stack.functions.get(stage)!;
      assert.equal(f.spec.binary, PIPELINE[stage].binary);
      template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: `floe-dev-${stage}` });
    }
  });

  it('are configured through the environment the Rust services read', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    for (const stage of STAGES) {
      const own = stack.queues.get(stage)!;
      const env = functions[logicalId(stack.functions.get(stage)!.function)].Properties.Environment.Variables;
      assert.equal(env.FLOE_ENGINE, 'athena');
      assert.equal(env.FLOE_PROJECT_DIR, PROJECT_DIR_IN_LAMBDA);
      assert.deepEqual(env.FLOE_LANDING_BUCKET, { Ref: logicalId(stack.storage.landing) });
      assert.deepEqual(env.FLOE_QUARANTINE_BUCKET, { Ref: logicalId(stack.storage.quarantine) });
      assert.deepEqual(env.FLOE_LAKE_LOCATION, {
        'Fn::Join': ['', ['s3://', { Ref: logicalId(stack.storage.lake) }, '/warehouse']],
      });
      assert.equal(env.FLOE_ATHENA_WORKGROUP, 'floe-dev');
      assert.deepEqual(env.FLOE_ATHENA_OUTPUT_LOCATION, {
        'Fn::Join': ['', ['s3://', { Ref: logicalId(stack.storage.results) }, '/athena/']],
      });
      assert.deepEqual(env.FLOE_DLQ_URL, { Ref: logicalId(own.deadLetterQueue) }, `${stage}: not its own DLQ`);
      assert.equal(env.FLOE_EVENT_BUS, 'default');
      assert.match(env.FLOE_BATCH_CONCURRENCY, /^[1-9][0-9]*$/);
      assert.match(env.FLOE_ATHENA_MAX_CONCURRENT_QUERIES, /^[1-9][0-9]*$/);
      // Exactly the queues of the stages it sends to.
      const queueVars = Object.keys(env).filter((k) => /^FLOE_[A-Z]+_QUEUE_URL$/.test(k)).sort();
      assert.deepEqual(queueVars, PIPELINE[stage].sendsTo.map(queueUrlVariable).sort(), stage);
      for (const next of PIPELINE[stage].sendsTo) {
        assert.deepEqual(env[queueUrlVariable(next)], { Ref: logicalId(stack.queues.get(next)!.queue) });
      }
    }
  });

  it('chain the stages as the services do: landing -> standardise -> audit -> modelling -> audit, audit -> standardise', () => {
    const edges = STAGES.flatMap((s) => PIPELINE[s].sendsTo.map((n) => `${s}->${n}`)).sort();
    assert.deepEqual(edges, ['audit->modelling', 'audit->standardise', 'landing->standardise', 'modelling->audit', 'standardise->audit']);
  });

  it('consume their own queue only, reporting partial batch failures', () => {
    const mappings = resourcesOf('AWS::Lambda::EventSourceMapping');
    assert.equal(mappings.length, STAGES.length);
    for (const stage of STAGES) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(stack.queues.get(stage)!.queue), 'Arn'] },
        FunctionName: { Ref: logicalId(stack.functions.get(stage)!.function) },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: Match.anyValue() },
      });
    }
  });

  it('take as many records per invocation as they handle at once, with no batching window', () => {
    const functions = template.findResources('AWS::Lambda::Function');
    for (const [, m] of resourcesOf('AWS::Lambda::EventSourceMapping')) {
      const env = functions[m.Properties.FunctionName.Ref].Properties.Environment.Variables;
      assert.equal(m.Properties.BatchSize, Number(env.FLOE_BATCH_CONCURRENCY));
      assert.equal(m.Properties.MaximumBatchingWindowInSeconds ?? 0, 0);
    }
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(stack.functions.get('modelling')!.function) },
      BatchSize: 1,
    });
  });

  it('log to their own log group with a retention, named by CloudFormation', () => {
    for (const stage of STAGES) {
      const f = stack.functions.get(stage)!;
      template.hasResourceProperties('AWS::Lambda::Function', {
        FunctionName: `floe-dev-${stage}`,
        LoggingConfig: { LogGroup: { Ref: logicalId(f.logGroup) } },
      });
    }
    const groups = resourcesOf('AWS::Logs::LogGroup');
    assert.equal(groups.length, STAGES.length);
    for (const [id, g] of groups) {
      assert.ok(g.Properties.RetentionInDays > 0, id);
      assert.equal(g.Properties.LogGroupName, undefined, `${id}: a fixed name collides with the group a failed deploy kept`);
    }
  });
});

describe('Athena and Glue', () => {
  it('run every query in one enforced workgroup with encrypted results and a bytes-scanned cutoff', () => {
    template.resourceCountIs('AWS::Athena::WorkGroup', 1);
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: 'floe-dev',
      WorkGroupConfiguration: {
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        BytesScannedCutoffPerQuery: Match.anyValue(),
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        ResultConfiguration: {
          OutputLocation: { 'Fn::Join': ['', ['s3://', { Ref: logicalId(stack.storage.results) }, '/athena/']] },
          EncryptionConfiguration: {
            EncryptionOption: 'SSE_KMS',
            KmsKey: { 'Fn::GetAtt': [logicalId(stack.storage.key), 'Arn'] },
          },
        },
      },
    });
    const workgroup = Object.values<any>(template.findResources('AWS::Athena::WorkGroup'))[0];
    const cutoff = workgroup.Properties.WorkGroupConfiguration.BytesScannedCutoffPerQuery;
    assert.ok(cutoff >= 10 * 1024 * 1024, 'under Athena minimum of 10 MB');
    // It holds no data; a kept workgroup's fixed name would block the next deploy.
    assert.equal(workgroup.DeletionPolicy, 'Delete');
    assert.equal(workgroup.Properties.RecursiveDeleteOption, true);
  });

  it('create bronze and silver databases per source of the project, and gold, floe_audit, floe_incoming, behind the dev prefix', () => {
    const names = Object.values<any>(template.findResources('AWS::Glue::Database'))
      .map((d) => d.Properties.DatabaseInput.Name)
      .sort();
    assert.deepEqual(stack.sources, ['crm', 'nomis']);
    assert.deepEqual(names, [
      'floe_dev_bronze_crm',
      'floe_dev_bronze_nomis',
      'floe_dev_floe_audit',
      'floe_dev_floe_incoming',
      'floe_dev_gold',
      'floe_dev_silver_crm',
      'floe_dev_silver_nomis',
    ]);
    // The folder of a database under the lake is its name on AWS, as the IAM prefixes are.
    template.hasResourceProperties('AWS::Glue::Database', {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseInput: {
        Name: 'floe_dev_gold',
        LocationUri: { 'Fn::Join': ['', ['s3://', { Ref: logicalId(stack.storage.lake) }, '/warehouse/floe_dev_gold']] },
      },
    });
  });

  it('tell the functions the prefix (FLOE_GLUE_DATABASE_PREFIX) and the gold database (output)', () => {
    for (const [, f] of resourcesOf('AWS::Lambda::Function')) {
      assert.equal(f.Properties.Environment.Variables.FLOE_GLUE_DATABASE_PREFIX, 'floe_dev_');
    }
    assert.equal(template.toJSON().Outputs.GoldDatabase.Value, 'floe_dev_gold');
  });
});

describe('monitoring', () => {
  const alarmOn = (metricName: string, dimension: unknown) =>
    resourcesOf('AWS::CloudWatch::Alarm').filter(
      ([, a]) =>
        a.Properties.MetricName === metricName &&
        JSON.stringify(a.Properties.Dimensions ?? []).includes(JSON.stringify(dimension)),
    );

  it('alarm on every DLQ and every function, and on failed Athena queries, all to the topic', () => {
    const topic = { Ref: logicalId(stack.monitoring.topic) };
    for (const stage of STAGES) {
      const dlq = alarmOn('ApproximateNumberOfMessagesVisible', { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.queues.get(stage)!.deadLetterQueue), 'QueueName'] } });
      assert.equal(dlq.length, 1, `${stage} DLQ alarm`);
      assert.equal(dlq[0][1].Properties.Threshold, 1);
      const errors = alarmOn('Errors', { Name: 'FunctionName', Value: { Ref: logicalId(stack.functions.get(stage)!.function) } });
      assert.equal(errors.length, 1, `${stage} errors alarm`);
    }
    const athena = resourcesOf('AWS::CloudWatch::Alarm').filter(([, a]) =>
      JSON.stringify(a.Properties.Metrics ?? []).includes('"QueryState","Value":"FAILED"'),
    );
    assert.equal(athena.length, 1);
    assert.ok(JSON.stringify(athena[0][1].Properties.Metrics).includes('"WorkGroup","Value":"floe-dev"'));
    for (const [id, a] of resourcesOf('AWS::CloudWatch::Alarm')) {
      assert.deepEqual(a.Properties.AlarmActions, [topic], id);
    }
    assert.equal(resourcesOf('AWS::CloudWatch::Alarm').length, STAGES.length * 2 + 1);
  });

  it('route floe.failed and floe.quarantined to an encrypted, SSL-only topic, and build a dashboard', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['floe'], 'detail-type': ['floe.failed', 'floe.quarantined'] },
      Targets: [Match.objectLike({ Arn: { Ref: logicalId(stack.monitoring.topic) } })],
    });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('let CloudWatch publish to the topic, for this stack\'s alarms in this account only, as well as EventBridge', () => {
    const topic = { Ref: logicalId(stack.monitoring.topic) };
    const policies = resourcesOf('AWS::SNS::TopicPolicy');
    assert.equal(policies.length, 1);
    const statements: any[] = policies[0][1].Properties.PolicyDocument.Statement;
    const allowed = (service: string) =>
      statements.filter((s) => s.Effect === 'Allow' && s.Principal?.Service === service && [].concat(s.Action).includes('sns:Publish' as never));
    const cloudwatch = allowed('cloudwatch.amazonaws.com');
    assert.equal(cloudwatch.length, 1, 'CloudWatch alarms cannot publish: the topic policy replaces SNS\'s default one');
    assert.deepEqual(cloudwatch[0].Resource, topic);
    assert.deepEqual(cloudwatch[0].Condition, {
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      ArnLike: {
        'aws:SourceArn': {
          'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:floe-dev-*']],
        },
      },
    });
    assert.equal(allowed('events.amazonaws.com').length, 1, 'EventBridge cannot publish');
    // The condition covers every alarm of the stack.
    for (const [id, a] of resourcesOf('AWS::CloudWatch::Alarm')) {
      assert.match(a.Properties.AlarmName, /^floe-dev-/, id);
    }
    // Both publishers may use the topic's key.
    const keyId = logicalId(stack.monitoring.topic.masterKey!);
    const keyStatements: any[] = template.toJSON().Resources[keyId].Properties.KeyPolicy.Statement;
    for (const service of ['cloudwatch.amazonaws.com', 'events.amazonaws.com']) {
      assert.ok(
        keyStatements.some(
          (s) => [].concat(s.Principal?.Service).includes(service as never) && [].concat(s.Action).includes('kms:GenerateDataKey' as never),
        ),
        `${service} cannot use the topic key`,
      );
    }
  });
});

describe('outputs', () => {
  it('give floe and scripts/deploy.sh the buckets, the lake, Athena and every queue', () => {
    const outputs = template.toJSON().Outputs;
    const keys = [
      OUTPUTS.region,
      OUTPUTS.landingBucket,
      OUTPUTS.quarantineBucket,
      OUTPUTS.lakeBucket,
      OUTPUTS.lakeLocation,
      OUTPUTS.resultsBucket,
      OUTPUTS.outputLocation,
      OUTPUTS.workgroup,
      OUTPUTS.goldDatabase,
      OUTPUTS.notificationTopic,
      OUTPUTS.dashboard,
      ...STAGES.flatMap((s) => [OUTPUTS.queueUrl(s), OUTPUTS.deadLetterQueueUrl(s)]),
    ];
    assert.deepEqual(Object.keys(outputs).sort(), [...keys].sort());
    assert.deepEqual(outputs.LandingBucket.Value, { Ref: logicalId(stack.storage.landing) });
    assert.deepEqual(outputs.LakeLocation.Value, {
      'Fn::Join': ['', ['s3://', { Ref: logicalId(stack.storage.lake) }, '/warehouse']],
    });
    assert.deepEqual(outputs.ModellingQueueUrl.Value, { Ref: logicalId(stack.queues.get('modelling')!.queue) });
    assert.deepEqual(outputs.Region.Value, { Ref: 'AWS::Region' });
  });
});

describe('dev and prod', () => {
  let prod: ReturnType<typeof synth>;
  before(() => {
    prod = synth({ stage: 'prod' });
  });

  const deletionPolicies = (t: Template, type: string) =>
    Object.values<any>(t.findResources(type)).map((r) => [r.DeletionPolicy, r.UpdateReplacePolicy]);

  it('keep data and page sooner in prod; dispose of everything and keep logs a week in dev', () => {
    for (const type of ['AWS::S3::Bucket', 'AWS::KMS::Key', 'AWS::Glue::Database', 'AWS::Logs::LogGroup']) {
      // Kept on stack deletion and replacement, but not when the create that made them rolls back.
      for (const p of deletionPolicies(prod.template, type)) assert.deepEqual(p, ['RetainExceptOnCreate', 'Retain'], `prod ${type}`);
      for (const p of deletionPolicies(template, type)) assert.deepEqual(p, ['Delete', 'Delete'], `dev ${type}`);
    }
    const retention = (t: Template) =>
      Object.values<any>(t.findResources('AWS::Logs::LogGroup')).map((r) => r.Properties.RetentionInDays);
    assert.ok(Math.min(...retention(prod.template)) > Math.max(...retention(template)));
    const errorThreshold = (t: Template) =>
      Object.values<any>(t.findResources('AWS::CloudWatch::Alarm')).find((a) => a.Properties.MetricName === 'Errors')
        .Properties.Threshold;
    assert.ok(errorThreshold(prod.template) < errorThreshold(template));
    // Names carry the stage.
    prod.template.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'floe-prod-landing' });
    prod.template.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'floe-prod-audit-dlq' });
    prod.template.hasResourceProperties('AWS::Athena::WorkGroup', { Name: 'floe-prod' });
    assert.equal(prod.stack.stackName, 'floe-prod');
  });

  it('retry a failed first deploy without a name conflict: nothing is kept when its create rolls back', () => {
    for (const [id, r] of Object.entries<any>(prod.template.toJSON().Resources)) {
      assert.notEqual(r.DeletionPolicy, 'Retain', `${id} (${r.Type}) outlives a failed create and blocks the retry`);
    }
    // What prod keeps after a stack deletion has no fixed name, except the Glue databases (the
    // functions must know their names): a new stack over them needs them removed or imported.
    const named = Object.entries<any>(prod.template.toJSON().Resources)
      .filter(([, r]) => r.DeletionPolicy === 'RetainExceptOnCreate' && physicalNames(r).length > 0)
      .map(([, r]) => r.Type);
    assert.deepEqual([...new Set(named)], ['AWS::Glue::Database']);
  });

  it('use plain Glue database names in prod, without FLOE_GLUE_DATABASE_PREFIX; -c glueDatabasePrefix sets one', () => {
    const names = Object.values<any>(prod.template.findResources('AWS::Glue::Database')).map((d) => d.Properties.DatabaseInput.Name);
    assert.deepEqual(names.sort(), ['bronze_crm', 'bronze_nomis', 'floe_audit', 'floe_incoming', 'gold', 'silver_crm', 'silver_nomis']);
    for (const f of Object.values<any>(prod.template.findResources('AWS::Lambda::Function'))) {
      assert.equal(f.Properties.Environment.Variables.FLOE_GLUE_DATABASE_PREFIX, undefined);
    }
    assert.equal(prod.template.toJSON().Outputs.GoldDatabase.Value, 'gold');
    const custom = synth({ stage: 'prod', glueDatabasePrefix: 'analytics_' });
    custom.template.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: { Name: 'analytics_gold' } });
    custom.template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { FLOE_GLUE_DATABASE_PREFIX: 'analytics_' } },
    });
  });

  it('share no name, so both can be deployed to one account and region', () => {
    const names = (t: Template) =>
      new Set(Object.values<any>(t.toJSON().Resources).flatMap((r) => physicalNames(r).map((n) => `${r.Type} ${n}`)));
    const dev = names(template);
    assert.ok(dev.size > 20, `only ${dev.size} names found`);
    const shared = [...names(prod.template)].filter((n) => dev.has(n));
    assert.deepEqual(shared, []);
  });
});

/** The fixed physical names a resource sets (functions, queues, databases, alarms, ...). */
function physicalNames(resource: any): string[] {
  const p = resource.Properties ?? {};
  const candidates = [
    p.FunctionName,
    p.QueueName,
    p.TopicName,
    p.AlarmName,
    p.DashboardName,
    p.AliasName,
    p.LogGroupName,
    p.BucketName,
    p.RoleName,
    p.DatabaseInput?.Name,
    resource.Type === 'AWS::Athena::WorkGroup' || resource.Type === 'AWS::Events::Rule' ? p.Name : undefined,
  ];
  return candidates.filter((c): c is string => typeof c === 'string');
}
