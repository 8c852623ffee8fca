/**
 * The buckets and the key that encrypts them.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { StageSettings } from './config';
import { LAKE_PREFIX } from './pipeline';

/** Props of {@link LakeStorage}. */
export interface LakeStorageProps {
  /** Name prefix (`floe-<stage>`), for the key alias. */
  readonly prefix: string;
  /** The deployment stage's settings (removal, lifecycles). */
  readonly settings: StageSettings;
}

/**
 * The four data buckets (landing, lake, Athena results, quarantine) and a fifth for their access
 * logs, with one customer-managed KMS key.
 *
 * Why this shape: every bucket holds data from the source systems (landed files, their
 * quarantined copies, the lake, query results), so all four are encrypted with a key the account
 * controls and can revoke, block public access, refuse plain HTTP, and log access. Landing is
 * versioned so an overwritten extract can still be found (the batch id includes the object
 * version), and it sends its events to EventBridge, which routes `landing/` to the landing queue.
 * Results are disposable and expire. The access-log bucket uses S3-managed keys because S3 server
 * access logging cannot deliver into a KMS-encrypted bucket.
 */
export class LakeStorage extends Construct {
  /** Encrypts the data buckets and Athena results. */
  readonly key: kms.Key;
  /** Where source systems drop files: `landing/<source>/<table>/<extract_ts>/<file>`. */
  readonly landing: s3.Bucket;
  /** The Iceberg warehouse (`s3://<lake>/warehouse`): table data, metadata, publish records. */
  readonly lake: s3.Bucket;
  /** Athena query results. */
  readonly results: s3.Bucket;
  /** Refused files and their reports: `quarantine/<source>/<table>/<extract_ts>/<file>`. */
  readonly quarantine: s3.Bucket;
  /** Server access logs of the four. */
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: LakeStorageProps) {
    super(scope, id);
    const { settings } = props;
    const removalPolicy = settings.removalPolicy;

    this.key = new kms.Key(this, 'Key', {
      alias: `alias/${props.prefix}`,
      description: `floe ${props.prefix}: landed files, the lake, quarantine and Athena results`,
      enableKeyRotation: true,
      removalPolicy,
      pendingWindow: removalPolicy === RemovalPolicy.DESTROY ? Duration.days(7) : Duration.days(30),
    });

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy,
    });

    const dataBucket = (id: string, extra: Partial<s3.BucketProps>): s3.Bucket =>
      new s3.Bucket(this, id, {
        encryption: s3.BucketEncryption.KMS,
        encryptionKey: this.key,
        bucketKeyEnabled: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        serverAccessLogsBucket: this.accessLogs,
        serverAccessLogsPrefix: `${id.toLowerCase()}/`,
        removalPolicy,
        ...extra,
      });

    this.landing = dataBucket('Landing', {
      versioned: true,
      lifecycleRules: [
        { id: 'expire-replaced-extracts', noncurrentVersionExpiration: settings.landingNoncurrentExpiration },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    // S3 -> EventBridge is a bucket setting in CloudFormation; set it there rather than through
    // the L2 `eventBridgeEnabled`, which deploys a custom-resource Lambda to do the same.
    (this.landing.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };

    this.lake = dataBucket('Lake', {
      lifecycleRules: [{ id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
    this.results = dataBucket('AthenaResults', {
      lifecycleRules: [
        {
          id: 'expire-query-results',
          expiration: settings.resultsExpiration,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    this.quarantine = dataBucket('Quarantine', {
      lifecycleRules: [{ id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) }],
    });
  }

  /** FLOE_LAKE_LOCATION: the Iceberg warehouse, `s3://<lake bucket>/warehouse`. */
  get lakeLocation(): string {
    return `s3://${this.lake.bucketName}/${LAKE_PREFIX}`;
  }
}
