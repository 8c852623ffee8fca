"""Fixtures for the stand-in's own tests: they run against a stand-in that is already up
(scripts/test.sh starts one; by hand: `scripts/aws-local.sh up` and the same AWS_ENDPOINT_URL)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

REGION = "eu-west-2"

# The rules' own tests import the package from scripts/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


@pytest.fixture(scope="session")
def endpoint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        pytest.fail("AWS_ENDPOINT_URL is not set: start the stand-in (scripts/aws-local.sh up) and export its env")
    return url


def client(name: str, endpoint: str):
    return boto3.client(name, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


class Athena:
    """A thin helper over boto3's Athena client: run a statement to the end."""

    def __init__(self, endpoint: str, database: str, output: str):
        self.client = client("athena", endpoint)
        self.database, self.output = database, output

    def start(self, sql: str, **kw) -> str:
        return self.client.start_query_execution(
            QueryString=sql, QueryExecutionContext={"Database": self.database},
            ResultConfiguration={"OutputLocation": self.output}, **kw)["QueryExecutionId"]

    def wait(self, qid: str, timeout: float = 120) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            e = self.client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            if e["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return e
            time.sleep(0.05)
        raise AssertionError(f"query {qid} still running after {timeout} s")

    def run(self, sql: str, **kw) -> dict:
        e = self.wait(self.start(sql, **kw))
        assert e["Status"]["State"] == "SUCCEEDED", (sql, e["Status"])
        return e

    def result(self, sql: str) -> list[list[str | None]]:
        """Every row GetQueryResults returns, through every page: a query's header row first,
        none for SHOW/DESCRIBE."""
        qid = self.run(sql)["QueryExecutionId"]
        out, token = [], None
        while True:
            kw = {"NextToken": token} if token else {}
            page = self.client.get_query_results(QueryExecutionId=qid, **kw)
            out.extend([d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"])
            token = page.get("NextToken")
            if not token:
                return out

    def rows(self, sql: str) -> list[list[str | None]]:
        return self.result(sql)[1:]  # the header row


@pytest.fixture()
def db(endpoint):
    """A fresh Glue database and results bucket per test."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    client("glue", endpoint).create_database(DatabaseInput={"Name": name})
    bucket = f"b-{name.replace('_', '-')}"
    client("s3", endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name, bucket


@pytest.fixture()
def athena(endpoint, db):
    name, bucket = db
    return Athena(endpoint, name, f"s3://{bucket}/results/")
