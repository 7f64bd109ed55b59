"""Real backup tests: the rendered agent, restic, a local S3 (moto) and a throwaway PostgreSQL.

Marked ``system`` (they need restic and PostgreSQL from Debian, see
tests/system-packages.txt) and ``slow``. A missing tool skips on a developer
machine and fails under CI=true (``tests.conftest.require_tool``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.hostconfig import render_host
from tests.conftest import example_settings, require_tool
from tests.system.helpers import materialise

HERE = Path(__file__).resolve().parent
REGION = "eu-central-1"
S3_KEY = "moto-test-key"
S3_SECRET = "moto-test-secret"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.system)
            item.add_marker(pytest.mark.slow)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class S3:
    endpoint: str
    port: int

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET)

    def locked_bucket(self) -> str:
        """A bucket set up like the production one: object lock (GOVERNANCE), hence versioning."""
        name = f"odoo-hosting-test-{uuid.uuid4().hex[:10]}"
        s3 = self.client()
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION},
                         ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        return name

    def all_bytes(self, bucket: str, prefix: str) -> bytes:
        """Every version of every object under ``prefix``, concatenated."""
        s3 = self.client()
        data = b""
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                data += s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        return data


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    try:
        import moto  # noqa: F401  (moto[server] is in requirements.lock)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("moto[server] is required under CI=true (make test installs requirements.lock)")
        pytest.skip("moto[server] is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield S3(endpoint=f"http://127.0.0.1:{port}", port=port)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The cloud-config's files, written by cloud-init itself."""
    return materialise(render_host(example_settings("example-public")), tmp_path_factory.mktemp("root") / "root")


@dataclass
class IncidentTopic:
    """The client's incident channel on moto: an SNS topic, an SQS queue standing in for the contacts."""

    arn: str
    env: dict
    """What odoo-hosting-notify needs to publish there (endpoint, topic, credentials)."""
    sqs: object
    queue: str
    register: str = ""
    """The bucket standing in for the client's incident register (every notification lands there too)."""

    def delivered(self, wait: int = 1) -> list[dict]:
        """The notifications delivered since the last call (SNS's JSON envelopes), oldest first."""
        found: list[dict] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=wait).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
            wait = 0


@pytest.fixture
def incident_topic(s3) -> IncidentTopic:
    import boto3
    kwargs = dict(endpoint_url=s3.endpoint, region_name=REGION, aws_access_key_id=S3_KEY,
                  aws_secret_access_key=S3_SECRET)
    sns, sqs = boto3.client("sns", **kwargs), boto3.client("sqs", **kwargs)
    suffix = uuid.uuid4().hex[:8]
    topic = sns.create_topic(Name=f"odoo-hosting-acme-shop-incidents-{suffix}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"contacts-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    register = s3.locked_bucket()
    env = {"PATH": os.environ.get("PATH", ""), "NOTIFY_SNS_ENDPOINT": s3.endpoint + "/",
           "INCIDENT_TOPIC_ARN": topic, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
           "NOTIFY_REGISTER_URL": f"{s3.endpoint}/{register}/records", "NOTIFY_REGISTER_REGION": REGION}
    return IncidentTopic(arn=topic, env=env, sqs=sqs, queue=queue, register=register)


class Postgres:
    """A throwaway PostgreSQL cluster on a Unix socket only."""

    def __init__(self, root: Path) -> None:
        # Debian keeps the server binaries out of PATH.
        server = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
        self.bin = server[-1].parent if server else Path(require_tool("postgres")).parent
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pwd.getpwnam(self.user)
        for path in (root, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            if self.user:
                shutil.chown(path, self.user)
        self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                        "--no-sync", "-E", "UTF8", "--locale=C"])
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(root / "log"),
                        "-o", f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir} -p {self.port} "
                              "-c fsync=off", "start"])

    def _as_owner(self, argv: list[str]) -> None:
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        subprocess.run(argv, check=True, capture_output=True, text=True)

    @property
    def args(self) -> str:
        """libpq connection options for the client tools (pg_dump, pg_restore, psql)."""
        return f"--host={self.socket_dir} --port={self.port} --username=postgres"

    def psql(self, database: str, sql: str) -> str:
        return subprocess.run(
            [str(self.bin / "psql"), *self.args.split(), "-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            check=True, capture_output=True, text=True).stdout

    def stop(self) -> None:
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    require_tool("pg_dump")
    # Outside pytest's 0700 tmp tree: as root the cluster runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="odoo-hosting-pg-"))
    os.chmod(root, 0o755)
    try:
        pg = Postgres(root / "cluster")
        try:
            yield pg
        finally:
            pg.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class CutProxy:
    """A TCP proxy in front of S3 that can fail mid-transfer, like an S3 outage."""

    def __init__(self, target_port: int, cut_after_bytes: int | None = None) -> None:
        self.target_port = target_port
        self.cut_after_bytes = cut_after_bytes
        self.forwarded = 0
        self.down = threading.Event()
        self.cut_happened = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        try:
            while not self.down.is_set():
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
                if upstream:
                    with self._lock:
                        self.forwarded += len(data)
                        if self.cut_after_bytes is not None and self.forwarded >= self.cut_after_bytes:
                            self.cut()
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        """S3 goes away: open connections drop, new ones are refused."""
        self.down.set()
        self.cut_happened.set()
        for s in list(self._sockets):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.server.close()


def write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    path.chmod(0o600)
    return path
