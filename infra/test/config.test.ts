/**
 * Context keys and the assets: bad values and missing artifacts stop the synth with a message
 * that says what to do; sources come from the project's tables/*.yaml.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { AssetError, DEFAULT_PROJECT_CONCURRENCY, loadAssets, readProjectConcurrency, readSources } from '../lib/assets';
import { ConfigError, readConfig, STAGE_SETTINGS } from '../lib/config';
import { PIPELINE, STAGES } from '../lib/pipeline';
import { FIXTURE_PROJECT, makeAssets, synth, tempDir } from './helpers';

const reader = (ctx: Record<string, unknown>) => (key: string) => ctx[key];
const binaries = STAGES.map((s) => PIPELINE[s].binary);

/** A copy of the fixture project with `file` (under tables/) replaced by `text`. */
function projectWith(file: string, text: string): string {
  const dir = tempDir('project');
  fs.cpSync(FIXTURE_PROJECT, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tables', file), text);
  return dir;
}

describe('context', () => {
  it('defaults to dev, quota 20, batch concurrency 2, assets under build/assets', () => {
    const c = readConfig(reader({}), '/repo/infra');
    assert.equal(c.stage, 'dev');
    assert.equal(c.prefix, 'floe-dev');
    assert.equal(c.athenaQueryQuota, 20);
    assert.equal(c.batchConcurrency, 2);
    assert.equal(c.assetDir, '/repo/infra/build/assets');
    assert.equal(c.settings, STAGE_SETTINGS.dev);
  });

  it('reads -c values given as strings, and bytesScannedCutoffGb', () => {
    const c = readConfig(
      reader({ stage: 'prod', athenaQueryQuota: '150', batchConcurrency: '4', bytesScannedCutoffGb: '50', assetDir: '/a' }),
      '/repo/infra',
    );
    assert.equal(c.prefix, 'floe-prod');
    assert.equal(c.athenaQueryQuota, 150);
    assert.equal(c.batchConcurrency, 4);
    assert.equal(c.settings.bytesScannedCutoffPerQuery, 50 * 1024 ** 3);
    assert.equal(c.settings.removalPolicy, STAGE_SETTINGS.prod.removalPolicy);
    assert.equal(c.assetDir, '/a');
  });

  it('schedules table maintenance daily at 03:00 UTC unless told otherwise, or not at all', () => {
    assert.equal(readConfig(reader({}), '.').maintenanceSchedule, 'cron(0 3 * * ? *)');
    assert.equal(readConfig(reader({ maintenanceSchedule: 'rate(7 days)' }), '.').maintenanceSchedule, 'rate(7 days)');
    assert.equal(readConfig(reader({ maintenanceSchedule: 'off' }), '.').maintenanceSchedule, undefined);
    assert.throws(() => readConfig(reader({ maintenanceSchedule: 'nightly' }), '.'), /maintenanceSchedule must be an EventBridge schedule expression/);
  });

  it('names the key and the fix for a bad value', () => {
    assert.throws(() => readConfig(reader({ stage: 'staging' }), '.'), (e: Error) => e instanceof ConfigError && /stage must be dev or prod/.test(e.message));
    assert.throws(() => readConfig(reader({ batchConcurrency: '0' }), '.'), /batchConcurrency must be a positive integer/);
    assert.throws(() => readConfig(reader({ athenaQueryQuota: 'lots' }), '.'), /athenaQueryQuota must be a positive integer/);
    assert.throws(() => readConfig(reader({ notificationEmail: 'nobody' }), '.'), /notificationEmail/);
    for (const bad of ['Floe_', 'floe', '_floe_', 'floe-dev_', `${'a'.repeat(64)}_`]) {
      assert.throws(() => readConfig(reader({ glueDatabasePrefix: bad }), '.'), /glueDatabasePrefix must be lowercase/, bad);
    }
  });

  it('prefixes Glue databases with floe_dev_ in dev and nothing in prod, unless glueDatabasePrefix says otherwise', () => {
    assert.equal(readConfig(reader({}), '.').settings.glueDatabasePrefix, 'floe_dev_');
    assert.equal(readConfig(reader({ stage: 'prod' }), '.').settings.glueDatabasePrefix, '');
    assert.equal(readConfig(reader({ stage: 'prod', glueDatabasePrefix: 'floe_' }), '.').settings.glueDatabasePrefix, 'floe_');
    assert.equal(readConfig(reader({ glueDatabasePrefix: 'sandbox_2_' }), '.').settings.glueDatabasePrefix, 'sandbox_2_');
  });

  it('subscribes notificationEmail to the topic', () => {
    const { template } = synth({ notificationEmail: 'data-team@example.com' });
    template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'data-team@example.com' });
  });
});

describe('sources', () => {
  it('are the source keys of tables/*.yaml and *.yml, sorted, each once', () => {
    assert.deepEqual(readSources(FIXTURE_PROJECT), ['crm', 'nomis']);
    const dir = projectWith('more_nomis.yaml', 'source: nomis\ntables: {}\n');
    assert.deepEqual(readSources(dir), ['crm', 'nomis']);
  });

  it('refuse a file without a valid source name, naming the file', () => {
    const dir = projectWith('bad.yaml', 'source: Bad-Name\ntables: {}\n');
    assert.throws(() => readSources(dir), (e: Error) => e instanceof AssetError && e.message.includes('bad.yaml') && /lowercase/.test(e.message));
    const broken = projectWith('broken.yaml', 'source: [unclosed\n');
    assert.throws(() => readSources(broken), /broken\.yaml: not valid YAML/);
  });

  it('follow the project: a third source adds its bronze and silver databases', () => {
    const project = projectWith('cases.yaml', 'source: cases\ntables: {}\n');
    const { template } = synth({}, makeAssets(project));
    const names = Object.values<any>(template.findResources('AWS::Glue::Database')).map((d) => d.Properties.DatabaseInput.Name);
    assert.ok(names.includes('floe_dev_bronze_cases') && names.includes('floe_dev_silver_cases'), names.join(', '));
  });
});

describe('the project concurrency', () => {
  it('is floe.yaml concurrency, 4 when absent, and must be a positive integer', () => {
    assert.equal(readProjectConcurrency(FIXTURE_PROJECT), 3);
    const dir = tempDir('project');
    fs.writeFileSync(path.join(dir, 'floe.yaml'), 'name: p\n');
    assert.equal(readProjectConcurrency(dir), DEFAULT_PROJECT_CONCURRENCY);
    fs.writeFileSync(path.join(dir, 'floe.yaml'), 'name: p\nconcurrency: 0\n');
    assert.throws(() => readProjectConcurrency(dir), /'concurrency' must be a positive integer/);
  });

  it('is what the modelling function runs at once: one record, the project concurrency of queries', () => {
    const { template } = synth();
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'floe-dev-modelling',
      Environment: { Variables: { FLOE_BATCH_CONCURRENCY: '1', FLOE_ATHENA_MAX_CONCURRENT_QUERIES: '3' } },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: 'floe-dev-landing',
      Environment: { Variables: { FLOE_BATCH_CONCURRENCY: '2', FLOE_ATHENA_MAX_CONCURRENT_QUERIES: '2' } },
    });
  });
});

describe('assets', () => {
  it('are one folder per function with bootstrap and project/', () => {
    const dir = makeAssets();
    const assets = loadAssets(dir, binaries);
    assert.deepEqual([...assets.codeDirs.keys()], binaries);
    for (const b of binaries) assert.ok(fs.existsSync(path.join(assets.codeDirs.get(b)!, 'project', 'floe.yaml')));
  });

  it('missing: the synth stops and says to run scripts/deploy.sh', () => {
    const dir = makeAssets();
    fs.rmSync(path.join(dir, 'floe-modelling', 'bootstrap'));
    assert.throws(() => loadAssets(dir, binaries), (e: Error) => /floe-modelling\/bootstrap/.test(e.message) && /scripts\/deploy\.sh/.test(e.message));
    assert.throws(() => synth({}, dir), /scripts\/deploy\.sh/);
  });

  it('must carry the same project in every function', () => {
    const dir = makeAssets();
    fs.writeFileSync(path.join(dir, 'floe-audit', 'project', 'tables', 'extra.yaml'), 'source: extra\n');
    assert.throws(() => loadAssets(dir, binaries), /floe-audit carries a project with sources \[crm, extra, nomis\]/);
  });
});
