/**
 * cdk-nag: the AWS Solutions checks run on every synth, and the few findings floe acknowledges,
 * each with its reason, in one place.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference';
import type { IConstruct } from 'constructs';

/** Runs the AWS Solutions rule pack over the whole app at synth; a finding stops the synth. */
export function applyNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/** How cdk-nag names a resource in an IAM5 finding: the ARN with references flattened. */
export function nagResourceName(scope: IConstruct, resource: string): string {
  return flattenCfnReference(Stack.of(scope).resolve(resource));
}

/**
 * Acknowledges AwsSolutions-IAM5 for one resource ARN that ends in a wildcard inside a scoped
 * prefix (objects under one prefix of one bucket, tables of one Glue database). Refuses a bare
 * `*` or a wildcard action: those are never acknowledged.
 */
export function acknowledgeScopedWildcard(scope: IConstruct, resource: string, reason: string): void {
  const name = nagResourceName(scope, resource);
  if (!name.includes('*')) return;
  if (name === '*' || !/[^*]\/\*$/.test(name)) {
    throw new Error(`refusing to acknowledge the wildcard resource '${name}': scope it to a prefix`);
  }
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[Resource::${name}]`, reason });
}
