"""The Debian 12 test image: built from Debian packages only, cached outside the repository.

The image stands in for Hetzner's ``debian-12`` image: the same release, the
packages the rendered cloud-config installs already baked in (the VM has no
network but the test's own forwards, so cloud-init's apt runs offline), plus
three TEST-IMAGE-ONLY pieces, each named so below:

* ``90-odoo-hosting-test-image.cfg``: NoCloud datasource only, and cloud-init
  leaves networking to systemd-networkd (DHCP from QEMU's user network);
* ``odoo-hosting-test-secret-id.service``: copies the response-wrapped
  secret-id that the test passes through QEMU ``-fw_cfg`` to
  ``WRAPPED_SECRET_ID_PATH`` on tmpfs. It stands in for the trusted
  orchestrator's delivery (the secrets issue builds the real one), so the
  secret-id is never in user-data, in the test either;
* ``qemu_fw_cfg`` loaded at boot, for the unit above.

Cache key: this recipe plus the ``Date:`` of the Debian Release files it is
built from, so a new point release or security update rebuilds the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from components.hostconfig import PACKAGES as CLOUD_CONFIG_PACKAGES
from components.hostconfig import RUNTIME_DIR, WRAPPED_SECRET_ID_PATH

SUITE = "bookworm"
MIRRORS = (
    ("http://deb.debian.org/debian", "bookworm"),
    ("http://deb.debian.org/debian", "bookworm-updates"),
    ("http://deb.debian.org/debian-security", "bookworm-security"),
)
ROOT_LABEL = "odoo-test-root"
ROOT_SIZE = "2G"
FW_CFG_SECRET_ID_NAME = "opt/odoo-hosting/secret-id"
IMAGE_PACKAGES = tuple(sorted({
    "linux-image-cloud-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus", "netbase", "kmod",
    "cloud-init", "openssh-server", "sudo", "ca-certificates", "iproute2", "procps",
    # In Hetzner's debian-12 image, not in a minimal one: the data volume script
    # needs mkfs.ext4/chattr, cloud-init's resizefs resize2fs, its timezone tzdata.
    "e2fsprogs", "tzdata",
    *CLOUD_CONFIG_PACKAGES,
}))

TEST_SECRET_ID_UNIT = f"""\
# TEST IMAGE ONLY (tests/vm): stands in for the trusted orchestrator that
# delivers the response-wrapped, single-use secret-id (the secrets issue
# builds the real delivery). QEMU passes it with -fw_cfg, never in user-data.
[Unit]
Description=TEST IMAGE ONLY: deliver the wrapped secret-id from QEMU fw_cfg
DefaultDependencies=no
After=systemd-modules-load.service local-fs.target
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -ec 'src=/sys/firmware/qemu_fw_cfg/by_name/{FW_CFG_SECRET_ID_NAME}/raw; \\
  if [ ! -e "$src" ]; then echo "no secret-id in fw_cfg"; exit 0; fi; \\
  install -d -m 0700 {RUNTIME_DIR}; \\
  install -m 0600 "$src" {WRAPPED_SECRET_ID_PATH}.tmp; \\
  mv {WRAPPED_SECRET_ID_PATH}.tmp {WRAPPED_SECRET_ID_PATH}'

[Install]
WantedBy=sysinit.target
"""

CUSTOMIZE = {
    "/etc/fstab": f"LABEL={ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1\n",
    "/etc/hostname": "odoo-test\n",
    "/etc/hosts": "127.0.0.1 localhost\n127.0.1.1 odoo-test\n",
    "/etc/systemd/network/10-odoo-hosting-test-dhcp.network":
        "# TEST IMAGE ONLY: QEMU user networking hands out 10.0.2.15 by DHCP.\n"
        "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n",
    "/etc/cloud/cloud.cfg.d/90-odoo-hosting-test-image.cfg":
        "# TEST IMAGE ONLY (tests/vm): the seed disk is NoCloud; networking is\n"
        "# systemd-networkd's (see 10-odoo-hosting-test-dhcp.network).\n"
        "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\n",
    "/etc/modules-load.d/odoo-hosting-test.conf": "# TEST IMAGE ONLY\nqemu_fw_cfg\n",
    "/etc/systemd/system/odoo-hosting-test-secret-id.service": TEST_SECRET_ID_UNIT,
}
ENABLE_UNITS = ("systemd-networkd.service", "odoo-hosting-test-secret-id.service")


def recipe() -> dict:
    return {"suite": SUITE, "mirrors": MIRRORS, "packages": IMAGE_PACKAGES, "files": CUSTOMIZE,
            "enable": ENABLE_UNITS, "root": [ROOT_LABEL, ROOT_SIZE], "version": 1}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "odoo-hosting" / "vm"


def release_dates(timeout: float = 10.0) -> list[str]:
    """``Date:`` of each InRelease (first bytes only); raises OSError offline."""
    dates = []
    for mirror, suite in MIRRORS:
        request = urllib.request.Request(f"{mirror}/dists/{suite}/InRelease", headers={"Range": "bytes=0-2047"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            head = response.read(4096).decode("utf-8", "replace")
        match = re.search(r"^Date: (.+)$", head, re.M)
        if not match:
            raise OSError(f"no Date in {mirror} {suite} InRelease")
        dates.append(f"{suite}={match.group(1).strip()}")
    return dates


@dataclass(frozen=True)
class Image:
    root: Path
    kernel: Path
    initrd: Path
    key: str
    built: bool
    """True when this run built it (cold cache)."""


def _recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def ensure_image(log=print) -> Image:
    """The cached image for the current recipe and Release dates, built if missing."""
    cache = cache_root()
    recipe_hash = _recipe_hash()
    try:
        dates = release_dates()
    except OSError as error:
        # Offline: any image of this recipe is still a faithful test image.
        candidates = sorted(cache.glob(f"{recipe_hash}-*/root.raw"), key=lambda p: p.stat().st_mtime)
        if candidates:
            log(f"vm image: Release dates unavailable ({error}); reusing {candidates[-1].parent.name}")
            return _image(candidates[-1].parent, built=False)
        raise
    key = f"{recipe_hash}-{hashlib.sha256(' '.join(dates).encode()).hexdigest()[:12]}"
    target = cache / key
    if (target / "root.raw").exists():
        return _image(target, built=False)
    cache.mkdir(parents=True, exist_ok=True)
    log(f"vm image: building {key} ({'; '.join(dates)})")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache) as tmp:
        _build(Path(tmp), dates)
        (Path(tmp) / "rootfs").exists() and shutil.rmtree(Path(tmp) / "rootfs")
        try:
            os.rename(Path(tmp) / "out", target)
        except OSError:
            if not (target / "root.raw").exists():  # else a concurrent run built it first
                raise
    # Keep the three newest images (concurrent checkouts may use different recipes);
    # a running QEMU keeps its open base image even when it is removed here.
    images = sorted((d for d in cache.iterdir() if d.is_dir() and not d.name.startswith(".build-")),
                    key=lambda d: d.stat().st_mtime, reverse=True)
    for stale in images[3:]:
        shutil.rmtree(stale, ignore_errors=True)
    return _image(target, built=True)


def _image(directory: Path, built: bool) -> Image:
    return Image(root=directory / "root.raw", kernel=directory / "vmlinuz", initrd=directory / "initrd.img",
                 key=directory.name, built=built)


def _build(tmp: Path, dates: list[str]) -> None:
    rootfs, out = tmp / "rootfs", tmp / "out"
    out.mkdir()
    sources = "".join(f"deb {mirror} {suite} main\n" for mirror, suite in MIRRORS)
    hooks = []
    for path, content in CUSTOMIZE.items():
        staged = tmp / ("file-" + hashlib.sha256(path.encode()).hexdigest()[:8])
        staged.write_text(content)
        hooks.append(f'--customize-hook=mkdir -p "$1{os.path.dirname(path)}" && cp {staged} "$1{path}"')
    hooks.append("--customize-hook=chroot \"$1\" systemctl enable " + " ".join(ENABLE_UNITS))
    subprocess.run(
        ["mmdebstrap", "--variant=apt", "--mode=root", "--format=directory", "--skip=cleanup/apt/lists",
         "--aptopt=APT::Install-Recommends \"false\"", f"--include={','.join(IMAGE_PACKAGES)}",
         *hooks, SUITE, str(rootfs), "-"],
        input=sources, text=True, check=True, stdout=subprocess.DEVNULL)
    boot = rootfs / "boot"
    kernel = max(boot.glob("vmlinuz-*"))
    shutil.copy(kernel, out / "vmlinuz")
    shutil.copy(boot / kernel.name.replace("vmlinuz", "initrd.img"), out / "initrd.img")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-d", str(rootfs), str(out / "root.raw"), ROOT_SIZE],
                   check=True)
    (out / "recipe.json").write_text(json.dumps({**recipe(), "release_dates": dates,
                                                 "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                                indent=2))
