"""The Caddy TLS proxy's Caddyfile, rendered from plain values (TLS-01, TLS-02).

Public clients: one site per domain with an ACME certificate that Caddy
renews itself, TLS 1.2+, HSTS for two years, and an explicit ``http://``
site whose only job is a permanent (308) redirect to HTTPS. VPN-only
clients: the site answers on the tunnel address with the internal CA's
origin certificate (pulumi-tls), and the published ports are bound to that
address only.

Odoo's routes: ``/websocket`` (the bus, Odoo 16+) goes to the gevent port
8072, everything else to 8069. Odoo runs with ``proxy_mode`` and trusts the
``X-Forwarded-*`` headers Caddy sets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from components.settings import Settings

HSTS_MAX_AGE = 63072000
"""Two years (TLS-01 floor: 31536000)."""
TLS_PROTOCOLS = ("tls1.2", "tls1.3")
ODOO_HTTP_PORT = 8069
ODOO_GEVENT_PORT = 8072
WEBSOCKET_PATHS = ("/websocket", "/websocket/*", "/longpolling/*")
UPSTREAM_RETRY_SECONDS = 30
"""CD-01: while Odoo is being replaced, a request whose dial fails is retried (every 250 ms, for at
most this long) instead of answered 502: the switch to the new container loses no request."""
# A dial to a container that just went away can hang on ARP: give up after 500 ms and retry
# (a dial on the host's own bridge takes well under a millisecond).
_UPSTREAM_RETRY = (f"\t\tlb_try_duration {UPSTREAM_RETRY_SECONDS}s", "\t\tlb_try_interval 250ms",
                   "\t\ttransport http {", "\t\t\tdial_timeout 500ms", "\t\t}")

# A Content-Security-Policy Odoo's web client runs under: its bundles are served from the site
# itself, but it boots with inline scripts, compiles QWeb templates with `new Function`
# ('unsafe-eval'), shows data:/blob: images and previews, and talks to the bus over wss:. What
# it still forbids: framing by other sites (clickjacking), plugins, a foreign <base>, and
# scripts, styles, fonts or connections from anywhere else. Set only when Odoo sent none
# (`?`): Odoo's own stricter policy on attachments (/web/content) stays.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob: https:",
    "media-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' wss:",
    "frame-src 'self' https:",
    "worker-src 'self' blob:",
    "frame-ancestors 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
))
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
"""Headers every HTTPS response carries (OWASP secure headers an Odoo site can keep)."""


_CADDY_TOKEN = re.compile(r"[A-Za-z0-9._%+@:/\[\]-]{1,2048}")


@dataclass(frozen=True, kw_only=True)
class ProxySite:
    """What the proxy serves; plain values so tests can override ports and the ACME directory."""

    addresses: Sequence[str]
    """Public domains, or the VPN address (and internal names) for VPN-only clients."""
    upstream: str
    """Host name of the Odoo container on the private network."""
    acme_email: str | None = None
    acme_ca: str | None = None
    """ACME directory; None is Let's Encrypt (tests point it at Pebble)."""
    acme_ca_root: str | None = None
    """PEM file of the ACME server's CA (tests: Pebble's)."""
    certificate: tuple[str, str] | None = None
    """(cert file, key file) in the container: the origin certificate (VPN-only)."""
    http_port: int = 80
    https_port: int = 443
    bind: str | None = None
    """Listen address inside the container (tests: 127.0.0.1); None = all."""
    storage_dir: str | None = None
    """Where Caddy keeps ACME accounts and certificates (tests: a temp dir)."""
    upstream_http_port: int = ODOO_HTTP_PORT
    upstream_gevent_port: int = ODOO_GEVENT_PORT

    def __post_init__(self) -> None:
        if not self.addresses:
            raise ValueError("a proxy needs at least one site address")
        # Each value is one Caddyfile token: nothing Caddy reads as syntax (blanks, quotes, braces,
        # '#' comments, '{$ENV}' / '{placeholder}' substitution, newlines) may reach the file.
        for value in (*self.addresses, self.upstream, self.acme_email, self.acme_ca, self.acme_ca_root,
                      *(self.certificate or ()), self.bind, self.storage_dir):
            if value is not None and not _CADDY_TOKEN.fullmatch(value):
                raise ValueError(f"not a plain Caddyfile token: {value[:60]!r}")
        if self.certificate is None and not self.acme_email:
            raise ValueError("ACME needs an account e-mail")


def render_caddyfile(site: ProxySite) -> str:
    glob = [
        f"\thttp_port {site.http_port}",
        f"\thttps_port {site.https_port}",
        # Only TCP is published; no HTTP/3 listener.
        "\tservers {",
        "\t\tprotocols h1 h2",
        "\t}",
    ]
    if site.certificate is None:
        glob.append(f"\temail {site.acme_email}")
        if site.acme_ca:
            glob.append(f"\tacme_ca {site.acme_ca}")
        if site.acme_ca_root:
            glob.append(f"\tacme_ca_root {site.acme_ca_root}")
    if site.storage_dir:
        glob.append(f"\tstorage file_system {site.storage_dir}")
    # The admin API is only reachable inside the container; off is simpler still.
    glob.append("\tadmin off")

    bind = [f"\tbind {site.bind}"] if site.bind else []
    if site.certificate is None:
        tls = ["\ttls {", f"\t\tprotocols {' '.join(TLS_PROTOCOLS)}", "\t}"]
    else:
        cert, key = site.certificate
        tls = [f"\ttls {cert} {key} {{", f"\t\tprotocols {' '.join(TLS_PROTOCOLS)}", "\t}"]
    https_addresses = ", ".join(f"https://{a}:{site.https_port}" if site.https_port != 443 else f"https://{a}"
                                for a in site.addresses)
    http_addresses = ", ".join(f"http://{a}:{site.http_port}" if site.http_port != 80 else f"http://{a}"
                               for a in site.addresses)
    https_suffix = "" if site.https_port == 443 else f":{site.https_port}"
    lines = [
        "# Managed by odoo-hosting (TLS-01/TLS-02). Rendered from the stack settings.",
        "{",
        *glob,
        "}",
        "",
        f"{https_addresses} {{",
        *bind,
        *tls,
        f'\theader Strict-Transport-Security "max-age={HSTS_MAX_AGE}; includeSubDomains"',
        *(f'\theader {name} "{value}"' for name, value in SECURITY_HEADERS),
        f'\theader ?Content-Security-Policy "{CONTENT_SECURITY_POLICY}"',
        # Neither the proxy nor Odoo's werkzeug announces itself.
        "\theader -Server",
        "\theader -X-Powered-By",
        f"\t@odoo_websocket path {' '.join(WEBSOCKET_PATHS)}",
        f"\treverse_proxy @odoo_websocket {site.upstream}:{site.upstream_gevent_port} {{",
        "\t\theader_down -Server",
        *_UPSTREAM_RETRY,
        "\t}",
        f"\treverse_proxy {site.upstream}:{site.upstream_http_port} {{",
        "\t\theader_down -Server",
        *_UPSTREAM_RETRY,
        "\t}",
        "}",
        "",
        "# Plain HTTP answers only with a permanent redirect to HTTPS.",
        f"{http_addresses} {{",
        *bind,
        "\theader -Server",
        f"\tredir https://{{host}}{https_suffix}{{uri}} 308",
        "}",
    ]
    return "\n".join(lines) + "\n"


def internal_name(client_id: str) -> str:
    """The VPN-only site's name (``.internal`` is reserved for private use)."""
    return f"odoo.{client_id}.internal"


def proxy_site(settings: Settings, *, origin_certificate: tuple[str, str]) -> ProxySite:
    """The production site for a client: ACME for public clients, the origin
    certificate on the VPN address for VPN-only ones."""
    if settings.public:
        return ProxySite(addresses=settings.domains, upstream="odoo", acme_email=settings.acme_email)
    return ProxySite(addresses=(str(settings.vpn.host_address), internal_name(settings.client_id)),
                     upstream="odoo", certificate=origin_certificate)
