"""The host bundle installer (``odoo-hosting-secret --bundle``) against real curl, a local S3
and SNS (moto) and a Vault stand-in, outside a VM.

The bundle is the real rendered one with its paths moved under a temporary root and its
activation replaced by a marker command (this test cannot restart a host's services; the
VM test in tests/vm does). moto checks neither SigV4 signatures nor object lock: the
signatures curl makes are compared with botocore's own signer instead.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.machinery import SourceFileLoader
from pathlib import Path
from unittest import mock

import pytest
import yaml

from components.hostconfig import BUNDLE_HEADER, render_boot_config, render_host, render_secret_fetch_script
from components.hostconfig.cloud_config import _yaml
from components.hostconfig.paths import BUNDLE_CACHE_PATH
from tests.conftest import example_settings, require_tool
from tests.render.test_secret_fetch import CLIENT_TOKEN, WRAPPING_TOKEN, FakeVault

from .conftest import REGION, S3_KEY, S3_SECRET

SETTINGS = example_settings("example-public")


def _test_bundle(root: Path, marker: Path) -> str:
    """The rendered bundle's files under ``root`` (owned by root: the admin user does not exist
    here), activation replaced by a marker command."""
    files = [dict(f, path=str(root / f["path"].lstrip("/")), owner="root:root")
             for f in yaml.safe_load(render_host(SETTINGS).bundle)["files"]]
    return BUNDLE_HEADER + _yaml({"files": files, "activate": [["sh", "-c", f"echo activated >> {marker}"]]})


class Host:
    """A fake host: boot.json, the rendered fetcher, a curl shim that records its arguments."""

    def __init__(self, tmp: Path, s3, topic_arn: str) -> None:
        require_tool("curl")
        self.tmp, self.s3 = tmp, s3
        self.root, self.marker, self.cache = tmp / "root", tmp / "activated", tmp / "cache" / "bundle.yaml"
        self.bundle = _test_bundle(self.root, self.marker)
        self.sha = hashlib.sha256(self.bundle.encode()).hexdigest()
        self.bucket, self.key = f"bundle-test-{self.sha[:8]}", f"host-bundle/{self.sha}.yaml"
        s3.client().create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.put(self.bundle)
        backup = f"clients/{SETTINGS.client_id}/backup"
        self.vault = FakeVault(f"{SETTINGS.client_id}-host", backup, values={
            "aws-access-key-id": S3_KEY, "aws-secret-access-key": S3_SECRET, "incident-topic-arn": topic_arn})
        config = json.loads(render_boot_config(SETTINGS, vault_address=self.vault.address))
        run = tmp / "run"
        config.update(wrapped_secret_id_path=str(run / "secret-id.wrapped"), token_cache_path=str(run / "token"),
                      wait_seconds=1, network_wait_seconds=2, sns_endpoint=s3.endpoint + "/",
                      bundle={"sha256": self.sha, "url": f"{s3.endpoint}/{self.bucket}/{self.key}", "region": REGION})
        config.pop("bootstrap_role_id")
        run.mkdir()
        (run / "secret-id.wrapped").write_text(WRAPPING_TOKEN)
        self.boot = tmp / "boot.json"
        self.boot.write_text(json.dumps(config))
        self.script = tmp / "odoo-hosting-secret"
        self.script.write_text(render_secret_fetch_script().replace(BUNDLE_CACHE_PATH, str(self.cache)))
        shims = tmp / "bin"
        shims.mkdir()
        (shims / "curl").write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {tmp}/curl-argv\nexec /usr/bin/curl "$@"\n')
        (shims / "curl").chmod(0o755)
        self.path = f"{shims}:/usr/sbin:/usr/bin:/sbin:/bin"

    def put(self, text: str) -> None:
        self.s3.client().put_object(Bucket=self.bucket, Key=self.key, Body=text.encode())

    def install(self) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(self.script), "--bundle"], capture_output=True, text=True,
                              timeout=60, env={"ODOO_HOSTING_BOOT_CONFIG": str(self.boot), "PATH": self.path})

    def written(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file()) if self.root.exists() else []


@pytest.fixture
def host(tmp_path, s3, incident_topic):
    if os.geteuid() != 0:
        pytest.skip("install -o root needs root") if os.environ.get("CI") != "true" else pytest.fail("needs root")
    h = Host(tmp_path, s3, incident_topic.arn)
    yield h
    h.vault.server.shutdown()


def test_first_boot_fetches_verifies_installs_and_activates(host):
    result = host.install()
    assert result.returncode == 0, result.stderr
    files = yaml.safe_load(host.bundle)["files"]
    assert f"bundle {host.sha[:12]} from {host.s3.endpoint}/{host.bucket}/" in result.stderr
    assert f"{len(files)} of {len(files)} files changed" in result.stderr
    for entry in files:
        path = Path(entry["path"])
        assert path.read_text() == entry["content"], path
        assert stat.S_IMODE(path.stat().st_mode) == int(entry["permissions"], 8), path
    assert host.marker.read_text() == "activated\n"
    assert host.cache.read_text() == host.bundle and stat.S_IMODE(host.cache.stat().st_mode) == 0o600
    # The bucket credential reached curl on stdin, never on its command line.
    argv = (host.tmp / "curl-argv").read_text()
    assert "--aws-sigv4 aws:amz:eu-central-1:s3" in argv and S3_SECRET not in argv and S3_KEY not in argv
    assert CLIENT_TOKEN not in result.stderr and S3_SECRET not in result.stderr


def test_later_boots_use_the_verified_copy_without_s3_and_restart_nothing(host):
    assert host.install().returncode == 0
    (host.tmp / "curl-argv").unlink()
    config = json.loads(host.boot.read_text())
    config["bundle"]["url"] = "http://127.0.0.1:9/gone"  # S3 unreachable from now on
    host.boot.write_text(json.dumps(config))
    again = host.install()
    assert again.returncode == 0, again.stderr
    assert "from cache: 0 of" in again.stderr
    assert not (host.tmp / "curl-argv").exists() and host.marker.read_text() == "activated\n"
    # A file changed on the host is put back from the verified copy, and activation runs again.
    tampered = Path(yaml.safe_load(host.bundle)["files"][0]["path"])
    tampered.write_text("PasswordAuthentication yes\n")
    repaired = host.install()
    assert repaired.returncode == 0 and "from cache: 1 of" in repaired.stderr
    assert tampered.read_text().startswith("# /etc/ssh/sshd_config.d/") and host.marker.read_text().count("\n") == 2
    # A corrupted copy is not trusted: it is fetched again (here: S3 is gone, so it fails closed).
    host.cache.write_text(host.bundle + "# changed\n")
    refetch = host.install()
    assert refetch.returncode == 1 and "does not match the pin" in refetch.stderr


def test_a_replaced_object_is_refused_reported_and_installs_nothing(host, incident_topic):
    host.put(host.bundle.replace("PasswordAuthentication no", "PasswordAuthentication yes"))
    result = host.install()
    assert result.returncode == 1
    assert "host bundle refused" in result.stderr and "reported to the incident channel" in result.stderr
    assert host.written() == [] and not host.marker.exists() and not host.cache.exists()
    (notice,) = incident_topic.delivered(wait=5)
    assert "host bundle refused" in notice["Subject"]
    assert host.sha in notice["Message"] and "data volume stays closed" in notice["Message"]
    assert S3_SECRET not in json.dumps(notice) and CLIENT_TOKEN not in json.dumps(notice)


def test_the_good_object_is_not_reported(host, incident_topic):
    """The refusal check can fail: the untampered bundle installs and nothing is reported."""
    assert host.install().returncode == 0
    assert incident_topic.delivered(wait=1) == []


# ---- curl's SigV4 is AWS's SigV4 -----------------------------------------------------------------

class Capture:
    """Records one request's method, path, headers and body; answers 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                capture.requests.append({"method": self.command, "path": self.path, "body": body,
                                         "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def _botocore_authorization(request: dict, url: str, service: str, secret: str = S3_SECRET) -> str:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = request["headers"]["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {name: request["headers"][name] for name in signed if name != "host"}
    when = datetime.datetime.strptime(request["headers"]["x-amz-date"], "%Y%m%dT%H%M%SZ")

    signer = (botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth)(
        Credentials(S3_KEY, secret), service, REGION)
    aws_request = AWSRequest(method=request["method"], url=url + request["path"], data=request["body"],
                             headers=headers)
    # Signed at the request's own second: botocore reads the clock through get_current_datetime
    # (datetime.now(utc)); the former utcnow patch froze nothing, so the comparison failed whenever
    # a second boundary fell between curl's request and this signature (about 1 run in 7).
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: when):
        signer.add_auth(aws_request)
    return aws_request.headers["Authorization"]


@pytest.mark.parametrize("service", ["s3", "sns"])
def test_curl_signs_like_botocore(tmp_path, service):
    require_tool("curl")
    script = tmp_path / "fetcher.py"
    script.write_text(render_secret_fetch_script())
    loader = SourceFileLoader("fetcher", str(script))
    fetcher = importlib.util.module_from_spec(importlib.util.spec_from_loader("fetcher", loader))
    loader.exec_module(fetcher)
    capture = Capture()
    values = {"aws-access-key-id": S3_KEY, "aws-secret-access-key": S3_SECRET,
              "incident-topic-arn": f"arn:aws:sns:{REGION}:123456789012:incidents"}
    config = {"network_wait_seconds": 1, "sns_endpoint": capture.url + "/"}
    try:
        if service == "s3":
            url = f"{capture.url}/bucket/host-bundle/{'0' * 64}.yaml"
            fetcher.aws(config, values, "s3", REGION, url, "-H",
                        f"x-amz-content-sha256: {hashlib.sha256(b'').hexdigest()}")
        else:
            fetcher.publish(config, values, "a subject", "a message with & and = and é")
        (request,) = capture.requests
    finally:
        capture.server.shutdown()
    assert request["headers"]["authorization"] == _botocore_authorization(request, capture.url, service)
    # The comparison can fail: another secret gives another signature.
    assert request["headers"]["authorization"] != _botocore_authorization(request, capture.url, service, "other")
