"""The host's SSH host key, made by the program (no trust on first use).

Per client one Ed25519 ``tls.PrivateKey``. Its private half travels like the
WireGuard key: a Pulumi secret, written to the client's Vault boot secret and
fetched by the host at boot (``odoo-hosting-hostkey``, in the host bundle, never
in user-data). Its public half is a stack output and a ``known_hosts`` line, so
whoever connects (the Docker provider, an operator, the CI runner) checks the
host strictly against the key Pulumi made. The key does not depend on the
server: a replaced server gets the same key back from Vault.

The Docker provider's SSH (``ssh_opts``) uses ``StrictHostKeyChecking=yes``
against :func:`known_hosts_path`, a file ``pulumi up`` writes from the key
before the provider may connect (:func:`write_known_hosts`); operators and CI
write the same file from the ``sshKnownHosts`` stack output.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_tls as tls

HOST_KEY_ALGORITHM = "ED25519"
KNOWN_HOSTS_DIR_ENV = "ODOO_HOSTING_KNOWN_HOSTS_DIR"
"""Directory of the per-client known_hosts files (default ``~/.ssh/odoo-hosting``)."""
_PUBLIC_KEY_RE = re.compile(r"^ssh-ed25519 [A-Za-z0-9+/]+={0,3}$")


def known_hosts_line(address: str, public_key_openssh: str | None, port: int = 22) -> str | None:
    """The ``known_hosts`` line of the host at ``address`` (``None`` while the key is unknown).

    ssh looks a host on port 22 up by its bare address and any other port as
    ``[address]:port``; a line in the other form would never match.
    """
    if not public_key_openssh:
        return None
    key = " ".join(public_key_openssh.split()[:2])
    if not _PUBLIC_KEY_RE.match(key):
        raise ValueError("the host key is not an ssh-ed25519 public key")
    host = address if port == 22 else f"[{address}]:{port}"
    return f"{host} {key}"


def known_hosts_path(client_id: str) -> str:
    """Where the client's known_hosts file is (the Docker provider's ``UserKnownHostsFile``)."""
    base = os.environ.get(KNOWN_HOSTS_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".ssh", "odoo-hosting")
    return os.path.join(base, f"{client_id}.known_hosts")


def write_known_hosts(path: str, line: str | None) -> str:
    """Write ``line`` to ``path`` (0644, atomically) and return the path. Nothing is written
    while the key is unknown (a first preview) or during a preview (no side effect there);
    ssh then finds no key and refuses the host, which is the safe side."""
    if line is not None and not pulumi.runtime.is_dry_run():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # A temporary name of its own: two runs writing the same client's file never share one.
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        temporary = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(line + "\n")
            temporary.chmod(0o644)
            temporary.replace(target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    return path


def strict_ssh_options(known_hosts: str) -> list[str]:
    """The Docker provider's ssh options: the host must present the Pulumi-made key."""
    return ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlgorithms=ssh-ed25519",
            "-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15"]


@dataclass(frozen=True, kw_only=True)
class SshHostKeyArgs:
    """Arguments of :class:`SshHostKey`."""

    client_id: str
    address: str
    """The address clients reach sshd at (the host's VPN address)."""


class SshHostKey(pulumi.ComponentResource):
    """The Ed25519 SSH host key of one client host."""

    private_key_openssh: pulumi.Output[str]
    """OpenSSH private key; secret (goes to Vault only)."""
    public_key_openssh: pulumi.Output[str]
    """``ssh-ed25519 AAAA...`` (no comment, no newline)."""
    known_hosts: pulumi.Output[str | None]
    """The ``known_hosts`` line for :attr:`SshHostKeyArgs.address`."""

    def __init__(self, name: str, args: SshHostKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:host:SshHostKey", name, None, opts)
        # Nothing of the server among its inputs: a replaced server keeps the key.
        key = tls.PrivateKey(f"{name}-key", algorithm=HOST_KEY_ALGORITHM,
                             opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=[
                                 "privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"]))
        # One trailing newline: the fetcher prints the value followed by one.
        self.private_key_openssh = pulumi.Output.secret(key.private_key_openssh.apply(lambda v: (v or "").strip()))
        self.public_key_openssh = key.public_key_openssh.apply(lambda v: " ".join((v or "").split()[:2]))
        self.known_hosts = key.public_key_openssh.apply(lambda v: known_hosts_line(args.address, v))
        self.register_outputs({"public_key_openssh": self.public_key_openssh, "known_hosts": self.known_hosts})
