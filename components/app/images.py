"""Container images, pinned by digest (SWU-01). The one place they are named.

A digest names exactly one image, so a re-pushed tag never changes what runs.
The update process must refresh these digests (``docker buildx imagetools
inspect <name>:<tag>`` prints the index digest) through a reviewed change;
unattended-upgrades keeps the host patched, this list keeps the containers
patched. Do not drop the ``@sha256:`` part: the policy pack refuses an
unpinned image (``docker-image-pinned-by-digest``).

The digests below are the ones published for these tags at the time they
were recorded (seen in other projects' pins; this build machine cannot reach
a registry), so the first refresh must verify them with ``imagetools inspect``.
"""

from __future__ import annotations

import re

DIGEST_RE = re.compile(r"^[a-z0-9./-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$")

ODOO_IMAGES = {
    "17.0": "odoo:17.0@sha256:f88f646a0f5fc0b225995ee28953d9ce7367cc731b1756765114691fb97d18e5",
    "18.0": "odoo:18.0@sha256:f943845750728960f9c3891a7076a72bd257f5b2d50d1c3d993e29a6e06d9489",
}
"""Official Odoo images, one per supported series (settings key ``odooVersion``)."""

POSTGRES_IMAGE = "postgres:16.4-bookworm@sha256:e62fbf9d3e2b49816a32c400ed2dba83e3b361e6833e624024309c35d334b412"
"""PostgreSQL 16 (Odoo 17/18 support 12+)."""

CADDY_IMAGE = "caddy:2.8.4-alpine@sha256:886f7caa715bd1d31c8a0253841a441d93d5fe374b9d9a3e3cf675088d3ab9ce"
"""The TLS proxy; alpine variant because the config is written by ``/bin/sh`` at start."""

ODOO_VERSIONS = tuple(ODOO_IMAGES)

for _image in (*ODOO_IMAGES.values(), POSTGRES_IMAGE, CADDY_IMAGE):
    if not DIGEST_RE.match(_image):
        raise ValueError(f"image {_image!r} is not name:tag@sha256:<64 hex>")
