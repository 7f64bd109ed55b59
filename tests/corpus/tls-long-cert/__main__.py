"""Generic case: a certificate valid for more than 90 days (TLS-04)."""
import pulumi_tls as tls

key = tls.PrivateKey("ca-key", algorithm="ECDSA", ecdsa_curve="P256")
tls.SelfSignedCert("year-long", private_key_pem=key.private_key_pem, validity_period_hours=24 * 365,
                   early_renewal_hours=24 * 30, allowed_uses=["cert_signing"], is_ca_certificate=True,
                   subject=tls.SelfSignedCertSubjectArgs(common_name="corpus CA"))
