"""sshd hardening drop-in (ACC-01)."""

from __future__ import annotations

import re

from components.settings import Settings

from .paths import SSHD_DROPIN_PATH

# Only algorithms OpenSSH 9.2 (Debian 12) knows; no SHA-1, no NIST-only KEX.
KEX_ALGORITHMS = ("sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org")
CIPHERS = ("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com")
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com")
# The host has ONE host key, Ed25519, delivered by Pulumi (the other generated keys are removed);
# ssh-audit fails an ECDSA host key (NIST curves) and warns on RSA.
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key"
HOST_KEY_ALGORITHMS = ("ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com")
# Operator keys may still be ECDSA/sk-ECDSA or RSA >= 3072 bits (settings), signing with rsa-sha2-*.
PUBKEY_ACCEPTED_ALGORITHMS = (
    "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "rsa-sha2-512", "rsa-sha2-256",
)


def sshd_options(settings: Settings) -> list[tuple[str, str]]:
    """The drop-in as (keyword, value) pairs, in file order."""
    return [
        ("PasswordAuthentication", "no"),
        ("KbdInteractiveAuthentication", "no"),
        ("PermitRootLogin", "no"),
        ("AuthenticationMethods", "publickey"),
        ("PubkeyAuthentication", "yes"),
        ("PermitEmptyPasswords", "no"),
        ("MaxAuthTries", "3"),
        ("LoginGraceTime", "30"),
        # DHEat (CVE-2002-20001): few unauthenticated connections, per source too (ssh-audit). Not
        # fewer than 10 per source: the Docker provider opens one SSH connection per concurrent API
        # call during `pulumi up`, all from the operator's one VPN address.
        ("MaxStartups", "10:30:60"),
        ("PerSourceMaxStartups", "10"),
        ("PerSourceNetBlockSize", "32:128"),
        # dev-sec ssh-baseline: no forwarding or tunnels (operators reach the host through the VPN),
        # idle sessions dropped, fingerprints of the keys used in the log.
        ("X11Forwarding", "no"),
        ("AllowAgentForwarding", "no"),
        ("AllowTcpForwarding", "no"),
        ("AllowStreamLocalForwarding", "no"),
        ("GatewayPorts", "no"),
        ("PermitTunnel", "no"),
        ("PermitUserEnvironment", "no"),
        ("HostbasedAuthentication", "no"),
        ("IgnoreRhosts", "yes"),
        ("GSSAPIAuthentication", "no"),
        ("KerberosAuthentication", "no"),
        ("StrictModes", "yes"),
        ("MaxSessions", "10"),
        ("ClientAliveInterval", "300"),
        ("ClientAliveCountMax", "3"),
        ("TCPKeepAlive", "no"),
        ("Compression", "no"),
        ("UseDNS", "no"),
        ("DebianBanner", "no"),
        ("LogLevel", "VERBOSE"),
        ("AllowUsers", settings.admin_user),
        ("HostKey", HOST_KEY_PATH),
        ("KexAlgorithms", ",".join(KEX_ALGORITHMS)),
        ("Ciphers", ",".join(CIPHERS)),
        ("MACs", ",".join(MACS)),
        ("HostKeyAlgorithms", ",".join(HOST_KEY_ALGORITHMS)),
        ("PubkeyAcceptedAlgorithms", ",".join(PUBKEY_ACCEPTED_ALGORITHMS)),
    ]


_SSHD_VALUE = re.compile(r"[A-Za-z0-9_.,:@/+=-]+")
"""One sshd_config argument: no blank (a second argument), quote, '#' or newline (a new keyword)."""


def render_sshd_dropin(settings: Settings) -> str:
    lines = [
        f"# {SSHD_DROPIN_PATH}: managed by odoo-hosting (ACC-01).",
        "# sshd keeps the first value it reads for each keyword and reads",
        "# sshd_config.d/*.conf in lexical order before the rest of sshd_config,",
        "# so this 00- file wins over cloud-init's 50-cloud-init.conf.",
        "# SSH is reachable only through the WireGuard tunnel (see nftables.conf).",
    ]
    for keyword, value in sshd_options(settings):
        if not _SSHD_VALUE.fullmatch(value):
            raise ValueError(f"{keyword}: not a single sshd_config argument: {value[:60]!r}")
        lines.append(f"{keyword} {value}")
    return "\n".join(lines) + "\n"
