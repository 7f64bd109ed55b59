"""BKP-01/BKP-03/INC-01 for real: the rendered backup agent against restic, S3 (moto) and PostgreSQL.

The scripts come out of the rendered cloud-config through cloud-init's own
write_files (so the packed user-data is proven too); only the host paths,
the Vault fetcher (a stand-in reading a JSON file) and the notifier (a
recorder) are swapped for test doubles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from components.hostconfig.backup import (
    BACKUP_ENV_PATH,
    BACKUP_SCRIPT_PATH,
    NOTIFY_SCRIPT_PATH,
    RESTORE_SCRIPT_PATH,
    backup_environment,
)
from tests.conftest import example_settings, require_tool
from tests.system.helpers import staged

from .conftest import REGION, S3_KEY, S3_SECRET, CutProxy, write_json

DB = "acme_shop"
PASSWORD_A = "A" * 8 + uuid.uuid4().hex  # 40 characters, like the generated ones (>= 32)
PASSWORD_B = "B" * 8 + uuid.uuid4().hex
PASSWORD_C = "C" * 8 + uuid.uuid4().hex

FAKE_VAULT = """#!/usr/bin/python3
import json, os, sys
args = sys.argv[1:]
if args[:2] != ["--path", "backup"] or len(args) != 3:
    print("fake vault: unexpected arguments %r" % args, file=sys.stderr); sys.exit(2)
data = json.load(open(os.environ["FAKE_VAULT_FILE"]))
if args[2] not in data:
    print("fake vault: no secret %s" % args[2], file=sys.stderr); sys.exit(1)
print(data[args[2]])
"""

RECORDER = """#!/bin/bash
kind=notification
if [ "$1" = --kind ]; then kind=$2; shift 2; fi
{ echo "SUBJECT: $1"; echo "KIND: $kind"; cat; echo "--"; } >> "$NOTIFY_LOG"
"""


class Agent:
    def __init__(self, root: Path, rendered_root: Path, s3, postgres, bucket: str) -> None:
        self.root, self.s3, self.pg, self.bucket = root, s3, postgres, bucket
        self.backup = staged(rendered_root, BACKUP_SCRIPT_PATH)
        self.restore = staged(rendered_root, RESTORE_SCRIPT_PATH)
        self.filestore = root / "srv" / "filestore"
        self.staging = root / "srv" / "backup-staging"
        self.notify_log = root / "notify.log"
        self.vault_file = root / "vault.json"
        fake_vault = root / "fake-vault"
        fake_vault.write_text(FAKE_VAULT)
        fake_vault.chmod(0o700)
        recorder = root / "notify"
        recorder.write_text(RECORDER)
        recorder.chmod(0o700)
        self.settings_env = _parse_env(staged(rendered_root, BACKUP_ENV_PATH).read_text())
        self.overrides = {
            "RESTIC_REPOSITORY": f"s3:{s3.endpoint}/{bucket}/restic",
            "RESTIC_CACHE_DIR": str(root / "cache"),
            "BACKUP_STAGING": str(self.staging),
            "BACKUP_FILESTORE": str(self.filestore),
            # Uncompressed, so the plaintext control below can find the marker in a dump.
            "BACKUP_DUMP_COMMAND": f"{postgres.bin}/pg_dump {postgres.args} --format=custom --compress=0 {DB}",
            "RESTORE_DATABASE_COMMAND": f"{postgres.bin}/pg_restore {postgres.args} --no-owner --dbname={DB}_restored",
            "SECRET_FETCH": f"{fake_vault} --path backup",
            "NOTIFY_COMMAND": str(recorder),
        }
        # The test changes only paths and doubles; every key it sets is one production has.
        assert set(self.overrides) <= set(self.settings_env), set(self.overrides) - set(self.settings_env)
        self.write_env()
        self.set_secrets(current=PASSWORD_A, previous=PASSWORD_C)

    def write_env(self, **extra: str) -> None:
        env = {**self.settings_env, **self.overrides, **extra}
        self.env_file = self.root / "backup.env"
        self.env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))

    def set_secrets(self, *, current: str, previous: str) -> None:
        write_json(self.vault_file, {
            "restic-password": current, "restic-password-previous": previous,
            "aws-access-key-id": S3_KEY, "aws-secret-access-key": S3_SECRET,
        })

    @property
    def environ(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "ODOO_HOSTING_BACKUP_ENV": str(self.env_file),
            "BACKUP_STATE_DIR": str(self.root / "state"),
            "FAKE_VAULT_FILE": str(self.vault_file),
            "NOTIFY_LOG": str(self.notify_log),
            "HOME": str(self.root),
        }

    def run(self, *args: str, script: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(script or self.backup), *args], env=self.environ, capture_output=True,
                              text=True, timeout=timeout)

    def restic(self, password: str, *args: str) -> subprocess.CompletedProcess:
        env = {"PATH": self.environ["PATH"], "HOME": str(self.root), "RESTIC_PASSWORD": password,
               "RESTIC_REPOSITORY": self.overrides["RESTIC_REPOSITORY"], "RESTIC_CACHE_DIR": str(self.root / "cache"),
               "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": REGION}
        return subprocess.run(["restic", *args], env=env, capture_output=True, text=True, timeout=300)

    def notifications(self) -> str:
        return self.notify_log.read_text() if self.notify_log.exists() else ""


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _db_digest(pg, database: str) -> str:
    return pg.psql(database, "SELECT md5(string_agg(id::text || ':' || body, ',' ORDER BY id)) FROM documents")


@pytest.fixture
def agent(tmp_path, rendered, s3, postgres):
    require_tool("restic")
    marker = uuid.uuid4().hex
    db_marker, fs_marker = f"ODOO-DB-MARKER-{marker}", f"ODOO-FS-MARKER-{marker}"
    for name in (DB, f"{DB}_restored"):
        postgres.psql("postgres", f"DROP DATABASE IF EXISTS {name}")
        postgres.psql("postgres", f"CREATE DATABASE {name}")
    postgres.psql(DB, "CREATE TABLE documents (id serial PRIMARY KEY, body text NOT NULL)")
    postgres.psql(DB, f"INSERT INTO documents (body) VALUES ('{db_marker}')")
    postgres.psql(DB, "INSERT INTO documents (body) SELECT md5(i::text) || repeat(' invoice line', 20) "
                      "FROM generate_series(1, 3000) AS i")
    a = Agent(tmp_path, rendered, s3, postgres, s3.locked_bucket())
    a.markers = (db_marker, fs_marker)
    (a.filestore / DB / "ab").mkdir(parents=True)
    (a.filestore / DB / "ab" / "attachment.txt").write_text(f"customer contract {fs_marker}\n" * 50)
    (a.filestore / DB / "cd").mkdir(parents=True)
    (a.filestore / DB / "cd" / "scan.bin").write_bytes(os.urandom(1_500_000))
    return a


def test_backup_holds_no_plaintext_and_a_restore_equals_the_original(agent):
    result = agent.run("run")
    assert result.returncode == 0, result.stderr
    assert not list(agent.staging.glob("*.dump")), "the staged dump is removed after the backup"

    # Control: the same data stored in plaintext IS found by the same search...
    s3 = agent.s3.client()
    dump = subprocess.run(shlex.split(agent.overrides["BACKUP_DUMP_COMMAND"]), capture_output=True, check=True).stdout
    s3.put_object(Bucket=agent.bucket, Key="control/database.dump", Body=dump)
    s3.put_object(Bucket=agent.bucket, Key="control/attachment.txt",
                  Body=(agent.filestore / DB / "ab" / "attachment.txt").read_bytes())
    control = agent.s3.all_bytes(agent.bucket, "control/")
    stored = agent.s3.all_bytes(agent.bucket, "restic/")
    assert len(stored) > 1_000_000
    for marker in agent.markers:
        assert marker.encode() in control
        # ...but not in what the agent stored (every version of every object).
        assert marker.encode() not in stored
    assert PASSWORD_A.encode() not in stored

    target = agent.root / "restore"
    result = agent.run("--target", str(target), "--load-database", script=agent.restore)
    assert result.returncode == 0, result.stderr
    assert "database loaded" in result.stdout
    assert _db_digest(agent.pg, f"{DB}_restored") == _db_digest(agent.pg, DB)
    assert _tree(target / str(agent.filestore).lstrip("/")) == _tree(agent.filestore)

    # A second run deduplicates, applies the retention policy, and the weekly check passes.
    assert agent.run("run").returncode == 0
    check = agent.run("check")
    assert check.returncode == 0, check.stderr
    assert "no errors were found" in check.stdout
    assert agent.notifications() == ""


def test_a_wrong_password_fails_with_a_clear_message_and_notifies(agent):
    assert agent.run("run").returncode == 0
    agent.set_secrets(current=PASSWORD_B, previous=PASSWORD_C)
    result = agent.run("run")
    assert result.returncode != 0
    assert "wrong password: neither the current nor the previous restic password from Vault opens" in result.stderr
    assert PASSWORD_B not in result.stderr + result.stdout
    notes = agent.notifications()
    assert "SUBJECT: odoo-hosting acme-shop: backup run FAILED\nKIND: backup-failure\n" in notes  # the register's kind
    assert "Step: opening the repository" in notes


def test_a_rotated_password_opens_the_repository_and_the_old_one_no_longer_does(agent):
    assert agent.run("run").returncode == 0
    # Vault rotated: B is current, A (what the repository has) is previous.
    agent.set_secrets(current=PASSWORD_B, previous=PASSWORD_A)
    result = agent.run("run")
    assert result.returncode == 0, result.stderr
    assert "repository moved to the current password" in result.stderr
    assert agent.restic(PASSWORD_B, "cat", "config").returncode == 0
    old = agent.restic(PASSWORD_A, "cat", "config")
    assert old.returncode != 0 and "wrong password" in old.stderr
    keys = json.loads(agent.restic(PASSWORD_B, "key", "list", "--json").stdout)
    assert len(keys) == 1
    snapshots = json.loads(agent.restic(PASSWORD_B, "snapshots", "--json").stdout)
    assert len(snapshots) >= 1  # the snapshots made under A stay readable under B
    # The restore script follows as well.
    result = agent.run("--list", script=agent.restore)
    assert result.returncode == 0, result.stderr


def test_an_s3_outage_mid_run_leaves_the_repository_consistent_and_reaches_the_failure_hook(agent):
    assert agent.run("run").returncode == 0
    before = json.loads(agent.restic(PASSWORD_A, "snapshots", "--json").stdout)
    (agent.filestore / DB / "ef").mkdir()
    (agent.filestore / DB / "ef" / "new-scan.bin").write_bytes(os.urandom(12_000_000))
    proxy = CutProxy(agent.s3.port, cut_after_bytes=3_000_000)
    agent.write_env(RESTIC_REPOSITORY=f"s3:http://127.0.0.1:{proxy.port}/{agent.bucket}/restic")
    proc = subprocess.Popen([str(agent.backup), "run"], env={**agent.environ, "INVOCATION_ID": "test-invocation"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proxy.cut_happened.wait(120), "the upload never reached the cut point"
    time.sleep(2)
    assert proc.poll() is None, "restic keeps retrying during an outage"
    # What systemd does at TimeoutStartSec: SIGTERM the unit's processes, SIGKILL after the stop timeout...
    # (the whole process group, like a unit's cgroup: restic's own cleanup would retry for minutes).
    os.killpg(proc.pid, signal.SIGTERM)
    time.sleep(3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode != 0
    # ...then it starts the OnFailure= unit, which reports to the incident channel.
    hook = agent.run("notify-failure", "odoo-hosting-backup.service")
    assert hook.returncode == 0, hook.stderr
    assert "SUBJECT: odoo-hosting acme-shop: odoo-hosting-backup.service FAILED" in agent.notifications()

    # S3 is back: the repository is consistent, the old snapshots are intact, the next run works.
    agent.write_env()
    check = agent.run("check")
    assert check.returncode == 0, check.stderr
    assert "no errors were found" in check.stdout
    after = json.loads(agent.restic(PASSWORD_A, "snapshots", "--json").stdout)
    assert [s["id"] for s in before] == [s["id"] for s in after]
    result = agent.run("run")
    assert result.returncode == 0, result.stderr
    target = agent.root / "restore"
    assert agent.run("--target", str(target), script=agent.restore).returncode == 0
    assert _tree(target / str(agent.filestore).lstrip("/")) == _tree(agent.filestore)


def test_the_notifier_publishes_to_the_incident_topic_with_sigv4(incident_topic, rendered):
    """The real odoo-hosting-notify against moto's SNS, delivered to an SQS subscriber."""
    notifier = staged(rendered, NOTIFY_SCRIPT_PATH)
    result = subprocess.run([sys.executable, str(notifier), "odoo-hosting acme-shop: backup run FAILED"],
                            input="Step: opening the repository\n", env=incident_topic.env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [body] = incident_topic.delivered()
    assert body["Subject"] == "odoo-hosting acme-shop: backup run FAILED"
    assert "opening the repository" in body["Message"]


def test_rendered_environment_names_the_clients_bucket_in_the_eu():
    env = backup_environment(example_settings("example-public"))
    assert env["RESTIC_REPOSITORY"].startswith("s3:https://s3.eu-central-1.amazonaws.com/odoo-hosting-acme-shop-")
    assert "password" not in " ".join(env).lower()
