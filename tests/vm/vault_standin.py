"""The smallest stand-in for Vault that the booted host can talk to.

It STANDS IN FOR VAULT in the VM test: it answers exactly the three calls
the host's fetcher (``odoo-hosting-secret``) makes, over TLS with a
throwaway CA made by the test:

* ``POST /v1/sys/wrapping/unwrap`` with the wrapping token: returns the
  AppRole secret-id, once (a second unwrap of the same token fails, as in
  Vault);
* ``POST /v1/auth/approle/login`` with role_id + secret_id: returns a client
  token;
* ``GET /v1/<kv mount>/data/<path>`` with that token: the KV v2 document
  at that path, one per path given (the client's ``boot`` and ``backup``
  paths: the bucket credential for the host bundle is only at ``backup``).

:meth:`VaultStandIn.rewrap` issues the next boot's wrapping token.

What it does NOT check (Vault does, and the secrets issue tests it): policies
and their paths, token TTLs and renewal, secret-id bound CIDRs/TTL/use
count beyond "unwrap once", response-wrapping TTL, audit devices, any other
endpoint or KV version. Every call is recorded so the test can prove what the
host asked for.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CLONE_NEWNET = 0x40000000


def socket_in_netns(netns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside a named network namespace (a thread joins it, makes it, exits)."""
    made: dict = {}

    def worker() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            made["socket"] = socket.socket(family, kind)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller
            made["error"] = error

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]
    return made["socket"]


def make_test_ca(directory: Path, server_ip: str) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``server_ip`` (P-256, 1 day). Returns (ca, cert, key)."""
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName=IP:{server_ip}\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key),
        "-out", str(ca), "-days", "1", "-subj", "/CN=odoo-hosting VM test throwaway CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", f"/CN={server_ip}")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "1",
        "-out", str(cert), "-extfile", str(ext))
    ca_key.unlink()  # nothing more to sign
    return ca, cert, key


class VaultStandIn:
    """Serves one host's secrets on 127.0.0.1:<port> inside ``netns``, over TLS.

    ``documents``: KV path (inside ``kv_mount``) -> its values."""

    def __init__(self, *, netns: str, port: int, cert: Path, key: Path, role_id: str, kv_mount: str,
                 documents: dict[str, dict[str, str]]) -> None:
        self.documents = {path: dict(values) for path, values in documents.items()}
        self.calls: list[tuple[str, str, int]] = []
        self.issued: list[str] = []
        self.rewrap()
        standin = self
        kv_prefix = f"/v1/{kv_mount}/data/"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, code: int, body: dict) -> None:
                standin.calls.append((self.command, self.path, code))
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self._reply(400, {"errors": ["bad JSON"]})
                token = self.headers.get("X-Vault-Token")
                if self.path == "/v1/sys/wrapping/unwrap":
                    if token != standin.wrapping_token or standin.unwrapped:
                        return self._reply(400, {"errors": ["wrapping token is not valid or does not exist"]})
                    standin.unwrapped += 1
                    return self._reply(200, {"data": {"secret_id": standin.secret_id,
                                                      "secret_id_accessor": "accessor"}})
                if self.path == "/v1/auth/approle/login":
                    if "secret_id" not in body:
                        # The bootstrap role (a login without secret-id) is not served: the test
                        # delivers the wrapped secret-id itself, which the fetcher prefers.
                        self.path += "#bootstrap"
                        return self._reply(400, {"errors": ["stand-in: bootstrap role not served"]})
                    if body != {"role_id": role_id, "secret_id": standin.secret_id}:
                        return self._reply(400, {"errors": ["invalid role or secret ID"]})
                    return self._reply(200, {"auth": {"client_token": standin.client_token,
                                                      "lease_duration": 600, "renewable": True}})
                return self._reply(404, {"errors": []})

            def do_GET(self):
                values = standin.documents.get(self.path.removeprefix(kv_prefix).split("?")[0])
                if self.path.startswith(kv_prefix) and values is not None:
                    if self.headers.get("X-Vault-Token") != standin.client_token:
                        return self._reply(403, {"errors": ["permission denied"]})
                    return self._reply(200, {"data": {"data": values, "metadata": {"version": 1}}})
                return self._reply(404, {"errors": []})

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert), str(key))
        sock = socket_in_netns(netns)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
        self.server.daemon_threads = True
        self.server.socket.close()
        self.server.socket = context.wrap_socket(sock, server_side=True)
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def rewrap(self) -> str:
        """A fresh wrapping token (with a new secret-id and client token) for the next boot, as the
        orchestrator delivers one per boot; the previous ones stop working. Returns the wrapping token."""
        self.wrapping_token = "hvs.wrap-" + secrets.token_urlsafe(24)
        self.secret_id = secrets.token_hex(18)
        self.client_token = "hvs.client-" + secrets.token_urlsafe(24)
        self.unwrapped = 0
        self.issued += [self.wrapping_token, self.secret_id, self.client_token]
        return self.wrapping_token

    @property
    def secrets_served(self) -> list[str]:
        """Every secret value that crossed the wire (to grep the guest's disks for)."""
        return [*self.issued, *(v for values in self.documents.values() for v in values.values())]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
