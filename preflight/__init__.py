"""preflight: an offline `pulumi preview --policy-pack` for Pulumi Python programs.

Runs a program in-process under Pulumi's own mocks (no CLI, no credentials, no
cloud), records every resource the way the engine would see it, and feeds the
resources to a CrossGuard policy pack over the analyzer gRPC protocol.
"""

SECRET_PLACEHOLDER = "PREFLIGHT-SECRET"
"""Marker contained in every value that stands in for a secret."""

MASK = "[secret]"
"""How secret-wrapped values are written in the --resources output."""


class PreflightError(Exception):
    """An error preflight reports as one line (exit code 2), without traceback."""
