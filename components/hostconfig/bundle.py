"""The host bundle: every host file that is not needed before the Vault login.

user-data carries the Vault fetcher and the bundle's SHA-256; the bundle itself
(plain YAML, see :func:`~.cloud_config.render_bundle`) is an object in the
client's own backup bucket, written by the program (content known at preview,
kept by the bucket's object lock). At first boot the fetcher logs in to Vault,
reads the bucket credential, fetches the object, checks its hash against the
pin and writes the files; the verified copy stays on the root disk, so later
boots need neither S3 nor Vault to have their software back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from components.settings import Settings

from .backup import backup_bucket_name
from .paths import BUNDLE_CACHE_PATH, SECRET_FETCH_PATH  # noqa: F401  (part of the interface)
from .paths import BUNDLE_UNIT_NAME as BUNDLE_UNIT_NAME

BUNDLE_HEADER = "#odoo-hosting-bundle v1\n"
"""First line of every bundle: what it is (the policy pack recognises bundles by it)."""
BUNDLE_KEY_PREFIX = "host-bundle/"
"""Bundles live under this prefix of the backup bucket, named by their SHA-256."""
BUNDLE_UNIT_PATH = f"/etc/systemd/system/{BUNDLE_UNIT_NAME}"


def bundle_sha256(bundle: str) -> str:
    return hashlib.sha256(bundle.encode()).hexdigest()


def bundle_key(sha256: str) -> str:
    """The bundle's object key: content-addressed, so a changed bundle is a new object."""
    return f"{BUNDLE_KEY_PREFIX}{sha256}.yaml"


def bundle_url(region: str, bucket: str, sha256: str) -> str:
    return f"https://s3.{region}.amazonaws.com/{bucket}/{bundle_key(sha256)}"


@dataclass(frozen=True)
class BundlePin:
    """What boot.json tells the host about its bundle (no secret)."""

    sha256: str
    url: str
    region: str
    bucket: str
    key: str
    sns_endpoint: str | None = None
    """Where a refused bundle is reported; None: the region's SNS endpoint (tests override it)."""

    def as_json(self) -> dict[str, str]:
        return {"sha256": self.sha256, "url": self.url, "region": self.region}


def bundle_pin(settings: Settings, bundle: str, *, url: str | None = None,
               sns_endpoint: str | None = None) -> BundlePin:
    sha = bundle_sha256(bundle)
    region, bucket = settings.backup.region, backup_bucket_name(settings.client_id)
    return BundlePin(sha256=sha, url=url or bundle_url(region, bucket, sha), region=region, bucket=bucket,
                     key=bundle_key(sha), sns_endpoint=sns_endpoint)


def render_bundle_unit() -> str:
    return f"""\
# managed by odoo-hosting: every boot, install the bundle pinned in boot.json
[Unit]
Description=odoo-hosting host bundle
Wants=network-online.target
After=network-online.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={SECRET_FETCH_PATH} --bundle
StandardError=journal+console
TimeoutStartSec=30min
[Install]
WantedBy=multi-user.target
"""
