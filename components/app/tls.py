"""Internal CA and origin certificate for VPN-only clients (TLS-02, TLS-04).

The CA and the origin certificate are made with pulumi-tls: ECDSA P-256,
validity at most 90 days with an early-renewal window, so any routine
``pulumi up`` in the last 30 days re-issues them. The CA is the client's
own (ISO-01): operators trust it for that client only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

KEY_ALGORITHM = "ECDSA"
KEY_CURVE = "P256"
CA_VALIDITY_HOURS = 90 * 24
CERT_VALIDITY_HOURS = 90 * 24
EARLY_RENEWAL_HOURS = 30 * 24


@dataclass(frozen=True, kw_only=True)
class InternalTlsArgs:
    """Arguments of :class:`InternalTls`."""

    client_id: str
    ip_addresses: Sequence[str]
    """Addresses the origin certificate is valid for (the host's VPN address)."""
    dns_names: Sequence[str] = ()

    def __post_init__(self) -> None:
        if not self.ip_addresses and not self.dns_names:
            raise ValueError("the origin certificate needs at least one address or name")


class InternalTls(pulumi.ComponentResource):
    """A per-client CA and the origin certificate the proxy serves on the VPN."""

    ca_cert_pem: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]
    """Secret."""

    def __init__(self, name: str, args: InternalTlsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("odoo-hosting:app:InternalTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"odoo-hosting {args.client_id} internal CA",
                                                  organization="odoo-hosting"),
            validity_period_hours=CA_VALIDITY_HOURS,
            early_renewal_hours=EARLY_RENEWAL_HOURS,
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            max_path_length=0,
            opts=child,
        )
        key = tls.PrivateKey(f"{name}-origin-key", algorithm=KEY_ALGORITHM, ecdsa_curve=KEY_CURVE, opts=child)
        request = tls.CertRequest(
            f"{name}-origin-csr",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=(list(args.dns_names) or list(args.ip_addresses))[0]),
            ip_addresses=list(args.ip_addresses),
            dns_names=list(args.dns_names),
            opts=child,
        )
        cert = tls.LocallySignedCert(
            f"{name}-origin-cert",
            cert_request_pem=request.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=CERT_VALIDITY_HOURS,
            early_renewal_hours=EARLY_RENEWAL_HOURS,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        self.ca_cert_pem = ca.cert_pem
        self.cert_pem = cert.cert_pem
        self.private_key_pem = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "cert_pem": self.cert_pem})
