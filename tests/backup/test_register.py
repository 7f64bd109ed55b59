"""The incident register for real: the rendered notifier writes each notification to an object-locked
bucket on a moto server that ENFORCES IAM (``INITIAL_NO_AUTH_ACTION_COUNT``), as the host identity
with exactly the policies the program renders.

moto evaluates identity (IAM user) policies, explicit denies included, and object lock retention;
it does not evaluate bucket policies for IAM users, so the register's bucket policy (a second
deny for the host) is checked as a document in tests/unit/test_register.py, not here. moto matches
resource ARNs for S3 only (other services' requests are judged against resource "*"), so the host's
``sns:Publish`` is granted on "*" here; the S3 statements are the program's own, evaluated as rendered.
moto maps a PUT of ``?retention`` to ``s3:PutObject``, so the deny of ``s3:PutObjectRetention`` is
checked as a document (tests/unit/test_register.py); COMPLIANCE mode refuses shortening anyway.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import uuid

import pytest

from components.backup import render_identity_policy
from components.hostconfig import NOTIFY_SCRIPT_PATH
from components.hostconfig.backup import register_bucket_name
from components.register import REGISTER_LOCK_DAYS, REGISTER_LOCK_MODE, render_register_identity_policy
from tests.conftest import ROOT
from tests.system.helpers import staged

from .conftest import REGION, free_port, wait_port

CLIENT = "acme-shop"
SETUP_ACTIONS = 3
"""Unauthenticated requests moto allows before it enforces IAM: create the admin, its policy, its key."""


class AwsWithIam:
    def __init__(self, endpoint: str) -> None:
        import boto3
        self.endpoint = endpoint
        bootstrap = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bootstrap",
                                 aws_secret_access_key="bootstrap")
        bootstrap.create_user(UserName="admin")
        bootstrap.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = bootstrap.create_access_key(UserName="admin")["AccessKey"]
        self.admin = (key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str, creds: tuple[str, str]):
        import boto3
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=creds[0],
                            aws_secret_access_key=creds[1])

    def user(self, name: str, *policies: str) -> tuple[str, str]:
        iam = self.client("iam", self.admin)
        iam.create_user(UserName=name)
        for n, policy in enumerate(policies):
            iam.put_user_policy(UserName=name, PolicyName=f"p{n}", PolicyDocument=policy)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("moto-iam") / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_ACTIONS)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port)
        yield AwsWithIam(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def register(aws, rendered, tmp_path):
    """The client's register (COMPLIANCE lock, versioning), its incident topic, and the host identity
    with the backup and register policies the program renders."""
    admin = aws.client("s3", aws.admin)
    bucket = f"{register_bucket_name(CLIENT)[:50]}-{uuid.uuid4().hex[:6]}"
    admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION},
                        ObjectLockEnabledForBucket=True)
    admin.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": REGISTER_LOCK_MODE, "Days": REGISTER_LOCK_DAYS}}})
    topic = aws.client("sns", aws.admin).create_topic(Name=f"odoo-hosting-{CLIENT}-incidents")["TopicArn"]
    backup_arn = f"arn:aws:s3:::{bucket}-backup"
    publish_anywhere = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]})
    host = aws.user(f"host-{uuid.uuid4().hex[:6]}", render_identity_policy(backup_arn),
                    render_register_identity_policy(f"arn:aws:s3:::{bucket}"), publish_anywhere)
    notifier = staged(rendered, NOTIFY_SCRIPT_PATH)
    env = {"PATH": os.environ.get("PATH", ""), "NOTIFY_SNS_ENDPOINT": aws.endpoint + "/",
           "INCIDENT_TOPIC_ARN": topic, "AWS_ACCESS_KEY_ID": host[0], "AWS_SECRET_ACCESS_KEY": host[1],
           "NOTIFY_REGISTER_URL": f"{aws.endpoint}/{bucket}/records", "NOTIFY_REGISTER_REGION": REGION,
           "NOTIFY_BAN_STATE": str(tmp_path / "bans.json")}

    def notify(*args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(notifier), *args], input=stdin, env={**env, **extra}, capture_output=True,
                              text=True, timeout=60)

    return bucket, host, notify


def _records(s3, bucket):
    return [v for v in s3.list_object_versions(Bucket=bucket, Prefix="records/").get("Versions", [])]


def test_each_notification_lands_in_the_register_with_its_retention(aws, register):
    bucket, _host, notify = register
    result = notify("--kind", "backup-failure", "odoo-hosting acme-shop: backup run FAILED",
                    stdin="restic exited 1 at step dump\n")
    assert result.returncode == 0, result.stderr
    assert "written to the register" in result.stderr
    burst = notify("--ban", "sshd", "203.0.113.9", "1", "600")
    assert burst.returncode == 0, burst.stderr

    admin = aws.client("s3", aws.admin)
    versions = _records(admin, bucket)
    assert len(versions) == 2
    now = datetime.datetime.now(datetime.UTC)
    kinds = {}
    for version in versions:
        assert version["Key"].startswith(f"records/{now:%Y/%m}/")
        obj = admin.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        assert obj["ObjectLockMode"] == REGISTER_LOCK_MODE
        days = (obj["ObjectLockRetainUntilDate"] - now).days
        assert REGISTER_LOCK_DAYS - 1 <= days <= REGISTER_LOCK_DAYS
        record = json.loads(obj["Body"].read())
        kinds[record["kind"]] = record
        assert record["notified"] is True and record["error"] is None
    assert set(kinds) == {"backup-failure", "ban-burst"}
    assert kinds["backup-failure"]["message"] == "restic exited 1 at step dump\n"
    assert "203.0.113.9" in kinds["ban-burst"]["message"]


def test_an_unsent_notification_is_recorded_as_not_notified(aws, register):
    bucket, _host, notify = register
    result = notify("odoo-hosting acme-shop: test", stdin="body",
                    INCIDENT_TOPIC_ARN=f"arn:aws:sns:{REGION}:123456789012:no-such-topic")
    assert result.returncode == 1  # not reported: the caller knows
    (version,) = _records(aws.client("s3", aws.admin), bucket)
    record = json.loads(aws.client("s3", aws.admin).get_object(
        Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read())
    assert record["notified"] is False and record["error"]
    assert record["kind"] == "notification"


def test_the_host_identity_cannot_delete_hide_or_overwrite_a_record(aws, register):
    from botocore.exceptions import ClientError
    bucket, host, notify = register
    assert notify("--kind", "backup-failure", "subject", stdin="first").returncode == 0
    admin = aws.client("s3", aws.admin)
    (version,) = _records(admin, bucket)
    as_host = aws.client("s3", host)
    for attempt in (
        lambda: as_host.delete_object(Bucket=bucket, Key=version["Key"]),  # a delete marker would hide it
        lambda: as_host.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"]),
        lambda: as_host.delete_bucket_policy(Bucket=bucket),
    ):
        with pytest.raises(ClientError) as refused:
            attempt()
        assert refused.value.response["Error"]["Code"] == "AccessDenied", refused.value.response
    # An overwrite is a new version: the first one stays, unchanged.
    as_host.put_object(Bucket=bucket, Key=version["Key"], Body=b'{"kind": "forged"}')
    assert len(_records(admin, bucket)) == 2
    original = admin.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    assert json.loads(original["Body"].read())["message"] == "first"
    # Even an administrator cannot take a COMPLIANCE-locked version away.
    with pytest.raises(ClientError):
        admin.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


def test_without_the_deny_the_same_identity_could_hide_records(aws, register):
    """The check above can fail: an identity allowed DeleteObject does hide the record."""
    bucket, _host, notify = register
    assert notify("subject", stdin="x").returncode == 0
    admin = aws.client("s3", aws.admin)
    (version,) = _records(admin, bucket)
    careless = aws.user(f"careless-{uuid.uuid4().hex[:6]}", json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}]}))
    aws.client("s3", careless).delete_object(Bucket=bucket, Key=version["Key"])
    markers = admin.list_object_versions(Bucket=bucket, Prefix="records/").get("DeleteMarkers", [])
    assert [m["Key"] for m in markers] == [version["Key"]]


def test_review_prints_the_register_by_month(aws, register):
    bucket, _host, notify = register
    assert notify("--kind", "backup-failure", "odoo-hosting acme-shop: backup run FAILED", stdin="x").returncode == 0
    assert notify("--ban", "odoo", "198.51.100.7", "1", "600").returncode == 0
    env = {**os.environ, "AWS_ACCESS_KEY_ID": aws.admin[0], "AWS_SECRET_ACCESS_KEY": aws.admin[1]}
    result = subprocess.run([sys.executable, "-m", "components.register", "review", "--client", CLIENT,
                             "--bucket", bucket, "--endpoint-url", aws.endpoint], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    month = f"{datetime.datetime.now(datetime.UTC):%Y-%m}"
    text = result.stdout
    assert text.startswith(f"# Incident register of {CLIENT}\n")
    assert f"## {month}\n" in text and "2 records, 2 notified" in text
    assert "| backup-failure | odoo-hosting acme-shop: backup run FAILED | yes | COMPLIANCE" in text
    assert "| ban-burst | odoo-hosting " in text
    print(text)
