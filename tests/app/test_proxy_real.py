"""The rendered Caddyfile run by the real Caddy against a real ACME server (Pebble), and a real
browser (headless Chromium) through it (TLS-01, CI-01).

Everything listens on 127.0.0.1 on free ports and is stopped by PID. Test-only overrides of the
rendered Caddyfile: the ACME directory (Pebble) and its CA, the ports, the loopback bind, the
storage directory and a 1 s renewal check (so a short-lived certificate is renewed within
seconds). Pebble validates the HTTP-01 challenge for real: its DNS is pebble-challtestsrv,
which answers 127.0.0.1 for every name, and it connects to Caddy's HTTP port.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.app.caddyfile import HSTS_MAX_AGE, ProxySite, render_caddyfile
from tests.conftest import ROOT, require_tool

pytestmark = pytest.mark.system

DOMAIN = "erp.acme-shop.example"
CERT_LIFETIME_SECONDS = 12
"""Pebble issues certificates this short; Caddy renews in the last third of the lifetime."""
ARTIFACTS = ROOT / "build" / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - polling until the service is up
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def _listener_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a 127.0.0.1/localhost certificate for Pebble's own HTTPS listener."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test pebble listener CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "listener-ca.pem", directory / "listener.pem", directory / "listener.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class _Backend(http.server.BaseHTTPRequestHandler):
    """The stand-in for Odoo: a page naming which port (8069 role or 8072 role) answered."""

    role = "http"

    def do_GET(self):  # noqa: N802
        body = (f"<html><head><title>Odoo stand-in</title></head><body>"
                f"<h1 id='standin'>Odoo stand-in ({self.role})</h1>"
                f"<p id='proto'>{self.headers.get('X-Forwarded-Proto', '')}</p>"
                f"<p id='host'>{self.headers.get('Host', '')}</p></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _backend(role: str) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = type(f"Backend{role}", (_Backend,), {"role": role})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stack:
    def __init__(self, tmp: Path, caddy: str, pebble: str, challtestsrv: str):
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []
        self.servers = []
        self.listener_ca, listener_cert, listener_key = _listener_ca(tmp)
        self.http_port, self.https_port = _free_port(), _free_port()
        self.acme_port, self.mgmt_port, self.dns_port = _free_port(), _free_port(), _free_port()
        dns_management = _free_port()
        self._start(tmp / "challtestsrv.log", [challtestsrv, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                                                "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "",
                                                "-https01", "", "-tlsalpn01", "",
                                                "-management", f"127.0.0.1:{dns_management}"])
        _wait(lambda: socket.create_connection(("127.0.0.1", dns_management), timeout=1).close() or True, 10,
              "pebble-challtestsrv")
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.acme_port}", "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
            "certificate": str(listener_cert), "privateKey": str(listener_key),
            "httpPort": self.http_port, "tlsPort": self.https_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False, "certificateValidityPeriod": CERT_LIFETIME_SECONDS}}
        (tmp / "pebble.json").write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
        self._start(tmp / "pebble.log", [pebble, "-config", str(tmp / "pebble.json"),
                                         "-dnsserver", f"127.0.0.1:{self.dns_port}", "-strict"], env=env)
        listener = ssl.create_default_context(cafile=str(self.listener_ca))
        _wait(lambda: self._get_root(listener), 10, "Pebble")
        web, web_port = _backend("http")
        bus, bus_port = _backend("websocket")
        self.servers += [web, bus]
        site = ProxySite(addresses=[DOMAIN], upstream="127.0.0.1", acme_email="ops@hosting.example",
                         acme_ca=f"https://127.0.0.1:{self.acme_port}/dir", acme_ca_root=str(self.listener_ca),
                         http_port=self.http_port, https_port=self.https_port, bind="127.0.0.1",
                         storage_dir=str(tmp / "caddy-data"), upstream_http_port=web_port,
                         upstream_gevent_port=bus_port)
        self.caddyfile = render_caddyfile(site).replace("\tadmin off", "\tadmin off\n\trenew_interval 1s")
        (tmp / "Caddyfile").write_text(self.caddyfile)
        caddy_env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"),
                     "XDG_CONFIG_HOME": str(tmp / "config")}
        self._start(tmp / "caddy.log", [caddy, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"],
                    env=caddy_env)
        self.trusted = ssl.create_default_context(cafile=str(tmp / "pebble-roots.pem"))

    def _start(self, log: Path, argv: list[str], env=None) -> None:
        # The child writes to its own copy of the descriptor: ours is closed once it has started.
        with open(log, "wb") as handle:
            self.procs.append(subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                               cwd=self.tmp, start_new_session=True))

    def _get_root(self, listener: ssl.SSLContext) -> bool:
        conn = http.client.HTTPSConnection("127.0.0.1", self.mgmt_port, context=listener, timeout=2)
        conn.request("GET", "/roots/0")
        pem = conn.getresponse().read()
        if b"BEGIN CERTIFICATE" not in pem:
            return False
        (self.tmp / "pebble-roots.pem").write_bytes(pem)
        return True

    def leaf(self) -> x509.Certificate:
        """The certificate Caddy serves now, verified against Pebble's root."""
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=3) as raw:
            with self.trusted.wrap_socket(raw, server_hostname=DOMAIN) as tls:
                return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))

    def https_get(self, path: str = "/") -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.trusted, timeout=5)
        conn.sock = self.trusted.wrap_socket(socket.create_connection(("127.0.0.1", self.https_port), timeout=5),
                                             server_hostname=DOMAIN)
        conn.request("GET", path, headers={"Host": DOMAIN})
        return conn.getresponse()

    def http_get(self, path: str = "/") -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
        conn.request("GET", path, headers={"Host": f"{DOMAIN}:{self.http_port}"})
        return conn.getresponse()

    def close(self) -> None:
        for proc in reversed(self.procs):
            _stop(proc)
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.tmp.glob("*.log"))


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    caddy, pebble, challtestsrv = require_tool("caddy"), require_tool("pebble"), require_tool("pebble-challtestsrv")
    stack = Stack(tmp_path_factory.mktemp("proxy"), caddy, pebble, challtestsrv)
    try:
        stack.first_leaf = _wait(stack.leaf, 20, "an ACME certificate from Pebble", interval=0.1)
        yield stack
    except AssertionError:
        raise AssertionError(stack.logs()) from None
    finally:
        stack.close()


def test_caddy_validates_the_rendered_caddyfile(proxy):
    out = subprocess.run([require_tool("caddy"), "validate", "--config", str(proxy.tmp / "Caddyfile"),
                          "--adapter", "caddyfile"], capture_output=True, text=True, cwd=proxy.tmp,
                         env={**os.environ, "HOME": str(proxy.tmp)})
    assert out.returncode == 0, out.stderr


def test_certificate_is_issued_by_the_acme_server_for_the_domain(proxy):
    leaf = proxy.first_leaf
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert names == [DOMAIN]
    assert "Pebble" in leaf.issuer.rfc4514_string()


def test_https_serves_the_backend_with_hsts(proxy):
    response = proxy.https_get("/web/login")
    body = response.read().decode()
    assert response.status == 200 and "Odoo stand-in (http)" in body
    assert "<p id='proto'>https</p>" in body  # what proxy_mode relies on
    hsts = response.getheader("Strict-Transport-Security")
    assert hsts and int(hsts.split("max-age=")[1].split(";")[0]) == HSTS_MAX_AGE >= 31536000
    assert response.getheader("Server") is None


def test_websocket_route_goes_to_the_gevent_port(proxy):
    response = proxy.https_get("/websocket")
    assert "Odoo stand-in (websocket)" in response.read().decode()


def test_http_is_a_permanent_redirect_to_https(proxy):
    response = proxy.http_get("/web/login?db=x")
    response.read()
    assert response.status in (301, 308)
    assert response.getheader("Location") == f"https://{DOMAIN}:{proxy.https_port}/web/login?db=x"


def _handshake(proxy, version: ssl.TLSVersion) -> str:
    """The protocol negotiated when the client offers only ``version``, or the error text."""
    import warnings

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")  # let this client offer old protocols at all
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", proxy.https_port), timeout=3) as raw:
            with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
                return tls.version()
    except (ssl.SSLError, ConnectionResetError) as e:
        return f"error: {e}"


def test_tls_1_2_is_accepted_and_tls_1_1_refused_by_the_server(proxy):
    assert _handshake(proxy, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    refused = _handshake(proxy, ssl.TLSVersion.TLSv1_1)
    assert refused.startswith("error") and "NO_PROTOCOLS_AVAILABLE" not in refused, refused


def _chromium(proxy, url: str, *extra: str) -> subprocess.CompletedProcess:
    chromium = require_tool("chromium")
    # Trust Pebble's intermediate by its public key: it signs every certificate of this run, renewals included.
    with socket.create_connection(("127.0.0.1", proxy.https_port), timeout=3) as raw:
        with proxy.trusted.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            chain = tls.get_verified_chain() if hasattr(tls, "get_verified_chain") else None
    if chain:
        spkis = [x509.load_der_x509_certificate(c if isinstance(c, bytes) else c.public_bytes(ssl.ENCODING_DER))
                 for c in chain]
    else:
        spkis = [proxy.first_leaf]
    hashes_b64 = ",".join(base64.b64encode(hashlib.sha256(c.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()).decode()
        for c in spkis)
    profile = proxy.tmp / f"chromium-{time.monotonic_ns()}"
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--host-resolver-rules=MAP {DOMAIN} 127.0.0.1",
            f"--ignore-certificate-errors-spki-list={hashes_b64}", "--virtual-time-budget=3000", *extra, url]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=45, cwd=proxy.tmp,
                              env={**os.environ, "HOME": str(proxy.tmp)})
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_browser_renders_the_page_over_https_and_keeps_a_screenshot(proxy):
    url = f"https://{DOMAIN}:{proxy.https_port}/web/login"
    dom = _chromium(proxy, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Chromium exits 0 even for an error page: the DOM is what counts.
    assert "<h1 id=\"standin\">Odoo stand-in (http)</h1>" in dom.stdout, dom.stdout[-2000:] + dom.stderr[-2000:]
    assert '<p id="proto">https</p>' in dom.stdout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "proxy-login-page.png"
    shot.unlink(missing_ok=True)
    result = _chromium(proxy, url, f"--screenshot={shot}", "--window-size=1280,800")
    assert result.returncode == 0 and shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_browser_is_redirected_from_http_to_https(proxy):
    dom = _chromium(proxy, f"http://{DOMAIN}:{proxy.http_port}/web/login", "--dump-dom")
    assert "Odoo stand-in (http)" in dom.stdout, dom.stdout[-2000:] + dom.stderr[-2000:]
    assert '<p id="proto">https</p>' in dom.stdout  # the page came through the HTTPS site


def test_short_lived_certificate_is_renewed_without_restart(proxy):
    caddy = proxy.procs[-1]
    first = proxy.first_leaf
    lifetime = (first.not_valid_after_utc - first.not_valid_before_utc).total_seconds()
    assert lifetime <= CERT_LIFETIME_SECONDS + 1
    renewed = _wait(lambda: (leaf := proxy.leaf()).serial_number != first.serial_number and leaf,
                    CERT_LIFETIME_SECONDS + 10, "a renewed certificate", interval=0.25)
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
    assert caddy.poll() is None  # the same process: renewed in place, no restart
    assert proxy.https_get("/").status == 200


# -- the production Caddyfiles, as rendered for the example stacks -----------------------------------

def _origin_certificate(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A CA and an origin certificate shaped like the pulumi-tls ones (ECDSA P-256, IP SAN)."""
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test internal CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(days=90))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "origin.crt", directory / "origin.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.mark.parametrize("stack", ["example-public", "example-private"])
def test_caddy_validates_every_rendered_production_caddyfile(tmp_path, stack):
    from components.app.caddyfile import proxy_site
    from tests.conftest import example_settings

    caddy = require_tool("caddy")
    settings = example_settings(stack)
    _ca, cert, key = _origin_certificate(tmp_path, str(settings.vpn.host_address))
    text = render_caddyfile(proxy_site(settings, origin_certificate=(str(cert), str(key))))
    (tmp_path / "Caddyfile").write_text(text)
    out = subprocess.run([caddy, "validate", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"],
                         capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")})
    assert out.returncode == 0, out.stderr[-2000:]


def test_vpn_only_site_serves_the_origin_certificate_and_redirects(tmp_path):
    """The VPN-only rendering (origin certificate, no ACME), on loopback ports instead of the tunnel address."""
    from components.app.caddyfile import internal_name

    caddy = require_tool("caddy")
    ca, cert, key = _origin_certificate(tmp_path, "127.0.0.1")
    web, web_port = _backend("http")
    http_port, https_port = _free_port(), _free_port()
    site = ProxySite(addresses=["127.0.0.1", internal_name("globex-internal")], upstream="127.0.0.1",
                     certificate=(str(cert), str(key)), http_port=http_port, https_port=https_port,
                     bind="127.0.0.1", storage_dir=str(tmp_path / "data"), upstream_http_port=web_port)
    (tmp_path / "Caddyfile").write_text(render_caddyfile(site))
    with open(tmp_path / "caddy.log", "wb") as log:
        proc = subprocess.Popen([caddy, "run", "--config", str(tmp_path / "Caddyfile"), "--adapter", "caddyfile"],
                                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
                                env={**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")})
    try:
        trusted = ssl.create_default_context(cafile=str(ca))

        def get():
            conn = http.client.HTTPSConnection("127.0.0.1", https_port, context=trusted, timeout=3)
            conn.request("GET", "/")
            return conn.getresponse()

        response = _wait(get, 10, "caddy with the origin certificate")
        assert response.status == 200 and "Odoo stand-in" in response.read().decode()
        assert "max-age=" in response.getheader("Strict-Transport-Security")
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=3)
        conn.request("GET", "/x", headers={"Host": f"127.0.0.1:{http_port}"})
        redirect = conn.getresponse()
        assert redirect.status == 308 and redirect.getheader("Location") == f"https://127.0.0.1:{https_port}/x"
    finally:
        _stop(proc)
        web.shutdown()
        web.server_close()
