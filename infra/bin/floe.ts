#!/usr/bin/env node
/**
 * The CDK app: one floe stack per deployment stage, `floe-<stage>`, checked by cdk-nag.
 *
 *   npx cdk synth -c stage=dev -c assetDir=build/assets
 *
 * Context keys are described in infra/README.md. Synth needs no AWS credentials and no network.
 */
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { readConfig } from '../lib/config';
import { FloeStack } from '../lib/floe-stack';
import { applyNagChecks } from '../lib/nag';

const app = new App();
const config = readConfig((key) => app.node.tryGetContext(key), path.join(__dirname, '..'));
new FloeStack(app, config.prefix, {
  config,
  description: `floe ELT pipeline (${config.stage}): S3 landing, SQS-chained Lambda stages, Athena over Iceberg in Glue`,
});
applyNagChecks(app);
