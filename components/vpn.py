"""WireGuard keys for the client's host (the operators' keys come from settings).

The host's private key is a Pulumi secret generated here; it reaches the host
through the boot-secrets seam (Vault), never through user-data. Only the
public key leaves this component in the clear, as a stack output operators
put into their WireGuard clients.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


def _public_key_of(private_key_b64: str) -> str | None:
    """Curve25519 public key of a WireGuard private key (what `wg pubkey` prints).

    Returns None when the value is not a 32-byte key, which only happens
    under mocks that hand back a placeholder for secret outputs; a real
    deployment always derives the key.
    """
    try:
        raw = base64.b64decode(private_key_b64, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return None
    if len(raw) != 32:
        return None
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


@dataclass(frozen=True, kw_only=True)
class WireGuardHostKeyArgs:
    """Arguments of :class:`WireGuardHostKey`."""

    client_id: str
    """The client this key belongs to (recorded as a keeper, so keys never move between clients)."""


class WireGuardHostKey(pulumi.ComponentResource):
    """The WireGuard key pair of one client host."""

    private_key: pulumi.Output[str]
    """Base64 private key; secret."""
    public_key: pulumi.Output[str | None]
    """Base64 public key; operators configure it as the host's peer."""

    def __init__(self, name: str, args: WireGuardHostKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:vpn:WireGuardHostKey", name, None, opts)
        # WireGuard clamps any 32 random bytes into a valid Curve25519 scalar,
        # so random bytes are a complete private key.
        key = random.RandomBytes(
            f"{name}-private-key",
            length=32,
            keepers={"client": args.client_id},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.private_key = pulumi.Output.secret(key.base64)
        self.public_key = pulumi.Output.unsecret(key.base64.apply(_public_key_of))
        self.register_outputs({"public_key": self.public_key})
