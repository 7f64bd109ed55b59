"""sshd hardening drop-in (ACC-01)."""

from __future__ import annotations

from components.settings import Settings

from .paths import SSHD_DROPIN_PATH

# Only algorithms OpenSSH 9.2 (Debian 12) knows; no SHA-1, no NIST-only KEX.
KEX_ALGORITHMS = ("sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org")
CIPHERS = ("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com")
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com")
# RSA keys (>= 3072 bits, see settings) sign with rsa-sha2-*, never ssh-rsa (SHA-1).
HOST_KEY_ALGORITHMS = (
    "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "rsa-sha2-512", "rsa-sha2-256",
)
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
        ("X11Forwarding", "no"),
        ("AllowAgentForwarding", "no"),
        ("AllowUsers", settings.admin_user),
        ("KexAlgorithms", ",".join(KEX_ALGORITHMS)),
        ("Ciphers", ",".join(CIPHERS)),
        ("MACs", ",".join(MACS)),
        ("HostKeyAlgorithms", ",".join(HOST_KEY_ALGORITHMS)),
        ("PubkeyAcceptedAlgorithms", ",".join(PUBKEY_ACCEPTED_ALGORITHMS)),
    ]


def render_sshd_dropin(settings: Settings) -> str:
    lines = [
        f"# {SSHD_DROPIN_PATH}: managed by odoo-hosting (ACC-01).",
        "# sshd keeps the first value it reads for each keyword and reads",
        "# sshd_config.d/*.conf in lexical order before the rest of sshd_config,",
        "# so this 00- file wins over cloud-init's 50-cloud-init.conf.",
        "# SSH is reachable only through the WireGuard tunnel (see nftables.conf).",
    ]
    lines += [f"{keyword} {value}" for keyword, value in sshd_options(settings)]
    return "\n".join(lines) + "\n"
