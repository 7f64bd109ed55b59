"""moto's server in the test's network namespace: stands in for the client's S3 bucket and SNS topic.

The booted host reaches it at ``http://GUEST_HOST_ALIAS:S3_PORT`` (QEMU's
user network maps that to the namespace's loopback). It holds the host
bundle at the pinned key and the incident topic a refused bundle is
reported to; the test reads back what was published (moto's
``/moto-api/data.json``) and which objects were fetched (moto's request log).

What it does NOT check (AWS does): moto accepts any SigV4 signature and any
access key (it does not verify signatures, so a wrong or missing credential
would pass here), has no bucket policy or IAM, and does not enforce object
lock (a real locked object cannot be replaced at all; the test replaces it to
play an attacker who got past that). It proves the host's requests are
well-formed S3 GETs and SNS Publishes, routed by their signing scope.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from .machine import stop_process
from .vault_standin import socket_in_netns

_REQUEST_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<code>\d{3})')


class MotoStandIn:
    """``python -m moto.server`` on 127.0.0.1:<port> inside ``netns``; a process the test owns."""

    def __init__(self, *, netns: str, port: int, log: Path, region: str) -> None:
        self.netns, self.port, self.log_path, self.region = netns, port, log, region
        with open(log, "wb") as out:
            # `ip netns exec` execs Python: this PID is moto's.
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", netns, sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                 "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self._request("GET", "/moto-api/data.json")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto did not start: {log.read_text()[-500:]}") from None
                time.sleep(0.2)

    def _request(self, method: str, path: str, body: bytes = b"", service: str = "") -> bytes:
        """One plain HTTP call from inside the namespace. ``service``: the signing scope moto routes by
        (moto reads the service from the Authorization header and ignores the signature)."""
        sock = socket_in_netns(self.netns)
        sock.settimeout(15)
        sock.connect(("127.0.0.1", self.port))
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        connection.sock = sock
        headers = {"Content-Length": str(len(body))}
        if service:
            headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential=vm-test/20260101/{self.region}/{service}/"
                                        "aws4_request, SignedHeaders=host, Signature=0")
        if service == "sns":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 300:
            raise RuntimeError(f"moto {method} {path}: HTTP {response.status} {data[:300]!r}")
        return data

    def create_bucket(self, bucket: str) -> None:
        self._request("PUT", f"/{bucket}", service="s3", body=(
            "<CreateBucketConfiguration><LocationConstraint>"
            f"{self.region}</LocationConstraint></CreateBucketConfiguration>").encode())

    def put_object(self, bucket: str, key: str, body: str) -> None:
        self._request("PUT", f"/{bucket}/{key}", body.encode(), service="s3")

    def create_topic(self, name: str) -> str:
        answer = self._request("POST", "/", urllib.parse.urlencode(
            {"Action": "CreateTopic", "Name": name, "Version": "2010-03-31"}).encode(), service="sns")
        return re.search(rb"<TopicArn>([^<]+)</TopicArn>", answer).group(1).decode()

    def published(self, topic_arn: str) -> list[dict[str, str]]:
        """Every message published to ``topic_arn`` ({"subject", "message"}), oldest first."""
        topics = json.loads(self._request("GET", "/moto-api/data.json")).get("sns", {}).get("Topic", [])
        return [{"subject": subject or "", "message": message}
                for topic in topics if topic.get("arn") == topic_arn
                for _id, message, subject, *_ in topic.get("sent_notifications", [])]

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request moto logged (the test's own included)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [(m["method"], m["path"], int(m["code"])) for m in _REQUEST_LINE.finditer(text)]

    def stop(self) -> None:
        stop_process(self.process, 10)
