"""Generic case: a Vault policy with a wildcard path or sudo (SEC-02)."""
import pulumi_vault as vault

vault.Policy("too-wide", policy='path "secret/*" {\n  capabilities = ["read", "list", "sudo"]\n}\n')
