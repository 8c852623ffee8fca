"""A floe project's AWS resources on the stand-in, named as the CDK stack names them.

The stack (infra/) is ``floe-<stage>``; the stand-in makes the ``dev`` stage's resources: the
landing bucket (EventBridge notifications on), the lake, Athena results and quarantine buckets,
one SQS queue per stage with its ``-dlq`` (5 receives), the EventBridge rule sending "Object
Created" under ``landing/`` to the landing queue, the Athena workgroup (its output location
enforced) and the Glue databases of every source, ``gold``, ``floe_audit`` and
``floe_incoming``. Then it writes ``engine: athena`` and the ``athena:`` section into the
project's floe.yaml. Every step is idempotent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

STAGES = ("landing", "standardise", "audit", "modelling")
# As the stack sets them (infra/lib/sizing.ts): visibility twice the function's timeout, three
# receives before the dead-letter queue.
VISIBILITY = {"landing": 2 * 300, "standardise": 2 * 900, "audit": 2 * 900, "modelling": 2 * 900}
MAX_RECEIVES = 3


def _clients(endpoint: str, region: str):
    kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id="test",
              aws_secret_access_key="test")
    return {n: boto3.client(n, **kw) for n in ("s3", "sqs", "events", "glue", "athena")}


def sources(project: Path) -> list[str]:
    """The `source:` of every tables/*.yaml (read as text: the stand-in has no YAML parser)."""
    out = []
    for f in sorted((project / "tables").glob("*.y*ml")):
        m = re.search(r"^source:\s*['\"]?([A-Za-z0-9_]+)", f.read_text(), re.M)
        if m:
            out.append(m.group(1))
    return out


def names(stage: str = "dev") -> dict[str, str]:
    prefix = f"floe-{stage}"
    return {
        "prefix": prefix,
        # The stack's glueDatabasePrefix: floe_<stage>_ except in prod (infra/README.md "Names").
        "database_prefix": "" if stage == "prod" else f"floe_{stage}_",
        "landing_bucket": f"{prefix}-landing",
        "lake_bucket": f"{prefix}-lake",
        "results_bucket": f"{prefix}-athena-results",
        "quarantine_bucket": f"{prefix}-quarantine",
        "workgroup": prefix,
        "rule": f"{prefix}-landed-files",
    }


def _bucket(s3, name: str, region: str) -> None:
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise


def _database(glue, name: str) -> None:
    try:
        glue.create_database(DatabaseInput={"Name": name})
    except ClientError as e:
        if e.response["Error"]["Code"] != "AlreadyExistsException":
            raise


def base(endpoint: str, region: str) -> None:
    """What every Athena client expects of an account: the ``default`` database and the
    warehouse bucket Trino's Glue catalog puts schemas without a location in."""
    c = _clients(endpoint, region)
    _bucket(c["s3"], "floe-local-warehouse", region)
    _database(c["glue"], "default")


def create(project: Path, endpoint: str, region: str, stage: str = "dev") -> dict[str, str]:
    n = names(stage)
    c = _clients(endpoint, region)
    for b in ("landing_bucket", "lake_bucket", "results_bucket", "quarantine_bucket"):
        _bucket(c["s3"], n[b], region)
    c["s3"].put_bucket_notification_configuration(
        Bucket=n["landing_bucket"],
        NotificationConfiguration={"EventBridgeConfiguration": {}},
    )
    urls = {}
    for stage_name in STAGES:
        q = f"{n['prefix']}-{stage_name}"
        dlq = c["sqs"].create_queue(QueueName=f"{q}-dlq")["QueueUrl"]
        dlq_arn = c["sqs"].get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        urls[stage_name] = c["sqs"].create_queue(
            QueueName=q,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY[stage_name]),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
            },
        )["QueueUrl"]
    landing_arn = c["sqs"].get_queue_attributes(QueueUrl=urls["landing"], AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    c["events"].put_rule(
        Name=n["rule"],
        EventPattern=json.dumps({
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [n["landing_bucket"]]}, "object": {"key": [{"prefix": "landing/"}]}},
        }),
    )
    c["events"].put_targets(Rule=n["rule"], Targets=[{"Id": "landing-queue", "Arn": landing_arn}])
    output = f"s3://{n['results_bucket']}/athena/"
    try:
        c["athena"].create_work_group(
            Name=n["workgroup"],
            Configuration={
                "ResultConfiguration": {"OutputLocation": output},
                "EnforceWorkGroupConfiguration": True,
                "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
            },
        )
    except ClientError as e:
        if "already exists" not in str(e):
            raise
    for db in [*(f"{layer}_{s}" for s in sources(project) for layer in ("bronze", "silver")),
               "gold", "floe_audit", "floe_incoming"]:
        _database(c["glue"], n["database_prefix"] + db)
    settings = {
        "region": region,
        "workgroup": n["workgroup"],
        "output_location": output,
        "landing_bucket": n["landing_bucket"],
        "lake_location": f"s3://{n['lake_bucket']}/warehouse",
        "endpoint_url": endpoint,
        "stack": n["prefix"],
        "quarantine_bucket": n["quarantine_bucket"],
        "database_prefix": n["database_prefix"],
    }
    write_settings(project / "floe.yaml", settings)
    return {**settings, **{f"{k}_queue_url": v for k, v in urls.items()}}


def write_settings(path: Path, settings: dict[str, str]) -> None:
    """Sets ``engine: athena`` and replaces the ``athena:`` section, keeping everything else
    (comments included) as it was."""
    lines = path.read_text().splitlines()
    out, skipping, engine_set = [], False, False
    for line in lines:
        if skipping:
            if line.strip() == "" or line.startswith((" ", "\t", "#")):
                continue
            skipping = False
        if re.match(r"^athena\s*:", line):
            skipping = True
            continue
        if re.match(r"^engine\s*:", line):
            comment = line[line.index("#"):] if "#" in line else ""
            line = f"engine: athena{'   ' + comment if comment else ''}"
            engine_set = True
        out.append(line)
    if not engine_set:
        out.append("engine: athena")
    out.append("athena:               # written by scripts/aws-local.sh up (the local Athena stand-in)")
    out.extend(f"  {k}: {json.dumps(v) if v == '' else v}" for k, v in settings.items())
    path.write_text("\n".join(out) + "\n")
