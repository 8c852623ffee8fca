/**
 * cdk-nag's AWS Solutions checks pass, and every acknowledged finding is one that really occurs,
 * is an IAM5 resource wildcard under a named prefix, and carries its reason.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { synth } from './helpers';

/** Every acknowledgment recorded in the tree: rule id -> reason, with where. */
function acknowledgments(root: IConstruct): { id: string; reason: string; path: string }[] {
  const out: { id: string; reason: string; path: string }[] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [recorded, reason] of Object.entries(entry.data as Record<string, string>)) {
        // CDK records an id it does not know as an annotation id; cdk-nag reads it back the same way.
        out.push({ id: recorded.replace(/^annotation::/i, ''), reason, path: c.node.path });
      }
    }
  }
  return out;
}

describe('cdk-nag AwsSolutions', () => {
  it('passes when the app is synthesized, as cdk synth does it', () => {
    const { app } = synth();
    const assembly = app.synth();
    const report = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8'));
    for (const plugin of report.pluginReports) {
      assert.equal(plugin.conclusion, 'success', `${plugin.pluginName}: ${JSON.stringify(plugin.violations).slice(0, 2000)}`);
    }
  });

  it('runs as a validation plugin of the app (a synth with a finding fails)', () => {
    const { app } = synth();
    const plugins = (app as unknown as { _validationPlugins: unknown[] })._validationPlugins;
    assert.ok(plugins.some((p) => p instanceof AwsSolutionsChecks));
  });

  it('finds, without acknowledgments, exactly the acknowledged findings: each needed, none unexplained', () => {
    const { app } = synth();
    const raw = new AwsSolutionsChecks(app);
    // Look past the acknowledgments: every finding the stack really has.
    (raw as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
    const findings = new Set(raw.validateScope(app).violations.map((v) => v.ruleName));
    const acked = acknowledgments(app);
    const ackedIds = new Set(acked.map((a) => a.id));
    assert.deepEqual([...findings].sort(), [...ackedIds].sort());
    assert.ok(findings.size > 0);
  });

  it('acknowledges only IAM5 resource wildcards under a named prefix, each with its reason, on a function role', () => {
    const { app } = synth();
    for (const a of acknowledgments(app)) {
      assert.match(a.id, /^AwsSolutions-IAM5\[Resource::.+\/[a-z_]+\/\*\]$/, a.id);
      assert.ok(a.reason.length >= 40, `${a.id}: reason too thin: '${a.reason}'`);
      assert.match(a.path, /^floe-dev\/(Landing|Standardise|Audit|Modelling)Stage\/Role$/, a.path);
    }
  });
});
