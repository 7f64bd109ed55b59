"""Generic case: a TLS key weaker than the floor (TLS-04)."""
import pulumi_tls as tls

tls.PrivateKey("weak", algorithm="RSA", rsa_bits=2048)
