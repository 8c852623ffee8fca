/**
 * Test helpers: throwaway Lambda assets (a stand-in bootstrap and the fixture project per
 * function, so no Rust build is needed) and a synthesized stack.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference';
import type { IConstruct } from 'constructs';
import { Template } from 'aws-cdk-lib/assertions';
import { FloeStack } from '../lib/floe-stack';
import { readConfig } from '../lib/config';
import { applyNagChecks } from '../lib/nag';
import { PIPELINE, STAGES } from '../lib/pipeline';

/** The fixture project: sources nomis and crm. */
export const FIXTURE_PROJECT = path.join(__dirname, 'fixtures', 'project');

/** Every temporary folder of this test process lives here and goes when the process exits. */
const TEMP_ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'floe-infra-test-'));
process.on('exit', () => fs.rmSync(TEMP_ROOT, { recursive: true, force: true }));

/** A fresh temporary folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(TEMP_ROOT, `${prefix}-`));
}

/**
 * An asset folder laid out as scripts/deploy.sh makes it: `<binary>/bootstrap` and
 * `<binary>/project/` for every function. `project` replaces the fixture project for all; `dir`
 * (which the caller then owns) replaces a temporary folder.
 */
export function makeAssets(project: string = FIXTURE_PROJECT, dir: string = tempDir('assets')): string {
  for (const stage of STAGES) {
    const fnDir = path.join(dir, PIPELINE[stage].binary);
    fs.mkdirSync(fnDir, { recursive: true });
    fs.writeFileSync(path.join(fnDir, 'bootstrap'), '#!/bin/sh\n# a stand-in for the cargo-lambda artifact\n', { mode: 0o755 });
    fs.cpSync(project, path.join(fnDir, 'project'), { recursive: true });
  }
  return dir;
}

/** The context of cdk.json (feature flags, defaults), so tests synthesize what `cdk synth` does. */
export const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

/** A synthesized floe stack and its template. */
export interface Synthesized {
  readonly app: App;
  readonly stack: FloeStack;
  readonly template: Template;
}

/**
 * Builds the app as bin/floe.ts does (cdk-nag included) with `context` over a fresh asset
 * folder; `Template.fromStack` synthesizes it, which runs the cdk-nag checks.
 */
export function synth(context: Record<string, unknown> = {}, assetDir: string = makeAssets()): Synthesized {
  const app = new App({ context: { ...CDK_JSON_CONTEXT, assetDir, ...context }, outdir: tempDir('cdk.out') });
  const config = readConfig((k) => app.node.tryGetContext(k), process.cwd());
  const stack = new FloeStack(app, config.prefix, { config });
  applyNagChecks(app);
  return { app, stack, template: Template.fromStack(stack) };
}

/** One IAM policy statement, with its resources flattened as cdk-nag names them. */
export interface FlatStatement {
  readonly sid?: string;
  readonly effect: string;
  readonly actions: string[];
  /** e.g. `<StorageLake72898626.Arn>/warehouse/gold/*`, `arn:<AWS::Partition>:glue:...:table/gold/*`. */
  readonly resources: string[];
  /** The template's resource values, unflattened. */
  readonly raw: unknown[];
}

const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/**
 * Every statement of every policy attached to the role `roleLogicalId` (inline policies, and
 * the managed policies CDK splits off when an inline policy grows past IAM's size limit).
 */
export function roleStatements(template: Template, roleLogicalId: string): FlatStatement[] {
  const out: FlatStatement[] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const policy of Object.values<any>(template.findResources(type))) {
      const roles = asArray(policy.Properties.Roles);
      if (!roles.some((r: any) => r?.Ref === roleLogicalId)) continue;
      for (const s of policy.Properties.PolicyDocument.Statement) {
        const raw = asArray<unknown>(s.Resource);
        out.push({
          sid: s.Sid,
          effect: s.Effect,
          actions: asArray<string>(s.Action),
          resources: raw.map((r) => flattenCfnReference(r)),
          raw,
        });
      }
    }
  }
  return out;
}

/** The logical id of a construct's CloudFormation resource in its stack. */
export function logicalId(construct: IConstruct): string {
  const cfn = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).resolve(Stack.of(construct).getLogicalId(cfn));
}
