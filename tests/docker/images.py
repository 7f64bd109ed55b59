"""The app plane's images, built here from Debian packages (no registry): cached outside the repository.

One root filesystem (``mmdebstrap --variant=minbase`` of bookworm with PostgreSQL 15,
Caddy, Python 3 with passlib and psycopg2, netcat) is imported once as a base image and
cached as a tarball in ``${XDG_CACHE_HOME:-~/.cache}/odoo-hosting/docker/<recipe hash>``.
Three role images are built on top of it per session (``docker build`` with COPY only, a
few seconds): what the official images provide, and only that:

* ``postgres``: the official image's contract that the recorded container relies on:
  user ``postgres`` uid 999, ``POSTGRES_USER``/``POSTGRES_DB``/``POSTGRES_PASSWORD_FILE``/
  ``POSTGRES_INITDB_ARGS``/``PGDATA``, an entrypoint that runs as root, chowns the data
  directory and steps down to postgres, ``pg_isready`` on the PATH.
* ``odoo``: user ``odoo`` uid 101, python3 with passlib, and ``odoo``: the stand-in server
  (``odoo_standin.py``), which behaves like Odoo where the host depends on it.
* ``caddy``: Debian's Caddy at ``caddy``, ``nc`` for the healthcheck, and the official
  image's environment (``XDG_CONFIG_HOME=/config``, ``XDG_DATA_HOME=/data``).

The users are made before the packages are installed, so the uids are the official
images' (999, 101), not whatever Debian's postinst would pick.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("postgresql-15", "caddy", "python3", "python3-passlib", "python3-psycopg2", "netcat-openbsd",
            "ca-certificates")
USERS = (("postgres", 999, "/var/lib/postgresql"), ("odoo", 101, "/var/lib/odoo"))
HERE = Path(__file__).resolve().parent
STANDIN = HERE / "odoo_standin.py"
PG_ENTRYPOINT = HERE / "pg_entrypoint.sh"
BASE_TAG = "odoo-hosting-test/base"

ROLE_DOCKERFILES = {
    "postgres": (
        "FROM {base}\n"
        "COPY pg_entrypoint.sh /usr/local/bin/docker-entrypoint.sh\n"
        'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
        'ENV PGDATA=/var/lib/postgresql/data\n'
        'STOPSIGNAL SIGINT\n'
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]\n'
        'CMD ["postgres"]\n'),
    "odoo": (
        "FROM {base}\n"
        "COPY odoo_standin.py /usr/bin/odoo\n"
        "USER odoo\n"
        'ENTRYPOINT ["/usr/bin/odoo"]\n'),
    "caddy": (
        "FROM {base}\n"
        "ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data\n"
        'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]\n'),
}


def recipe() -> dict:
    return {"suite": SUITE, "mirror": MIRROR, "packages": PACKAGES, "users": USERS, "version": 1}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "odoo-hosting" / "docker"


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def rootfs_tarball(log=print) -> Path:
    """The cached root filesystem tarball of the current recipe, built when missing (a few minutes)."""
    target = cache_root() / recipe_hash() / "rootfs.tar"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"docker images: building the base root filesystem {recipe_hash()} (mmdebstrap, cold cache)")
    # Straight into base-passwd's files: useradd (passwd) is not installed yet at this stage.
    users = " && ".join(
        f'echo "{name}:x:{uid}:{uid}::{home}:/bin/sh" >> "$1/etc/passwd" && echo "{name}:x:{uid}:" >> "$1/etc/group"'
        f' && echo "{name}:*:19000:0:99999:7:::" >> "$1/etc/shadow"'
        for name, uid, home in USERS)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as tmp:
        partial = Path(tmp) / "rootfs.tar"
        result = subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar",
             "--aptopt=APT::Install-Recommends \"false\"",
             f"--essential-hook={users}",
             # No cluster made by the package: the entrypoint runs initdb on the data volume.
             '--essential-hook=mkdir -p "$1/etc/postgresql-common" && '
             'echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.conf"',
             "--customize-hook=rm -rf \"$1\"/usr/share/doc/* \"$1\"/usr/share/man/* \"$1\"/usr/share/locale/*",
             f"--include={','.join(PACKAGES)}", SUITE, str(partial), MIRROR],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=1800)
        if result.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed ({result.returncode}): {result.stderr[-3000:]}")
        os.replace(partial, target)
    for stale in cache_root().iterdir():
        if stale.is_dir() and stale.name != recipe_hash() and not stale.name.startswith(".build-"):
            for f in stale.iterdir():
                f.unlink()
            stale.rmdir()
    return target


def _context(dockerfile: str, files: dict[str, Path]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, path in files.items():
            info = tar.gettarinfo(str(path), arcname=name)
            info.mode = 0o755
            info.uid = info.gid = 0
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    buffer.seek(0)
    return buffer


def build_images(client: docker.DockerClient, socket_url: str, docker_cli: str = "/usr/bin/docker",
                 log=print) -> dict[str, str]:
    """Import the cached base and build the three role images; returns role label -> image id."""
    tarball = rootfs_tarball(log)
    base = f"{BASE_TAG}:{recipe_hash()}"
    # The CLI streams the tarball (the SDK's import sends it in a way dockerd 20.10 refuses).
    subprocess.run([docker_cli, "-H", socket_url, "import",
                    str(tarball), base], check=True, capture_output=True, timeout=600)
    ids = {}
    for role, dockerfile in ROLE_DOCKERFILES.items():
        files = {"postgres": {"pg_entrypoint.sh": PG_ENTRYPOINT}, "odoo": {"odoo_standin.py": STANDIN}}.get(role, {})
        image, _ = client.images.build(fileobj=_context(dockerfile.format(base=base), files), custom_context=True,
                                       tag=f"odoo-hosting-test/{role}:latest", rm=True)
        ids[role] = image.id
    # Keyed by the containers' role label (odoo-hosting/role).
    return {"database": ids["postgres"], "odoo": ids["odoo"], "proxy": ids["caddy"]}
