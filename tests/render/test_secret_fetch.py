"""SEC-01/SEC-02: odoo-hosting-secret against a fake Vault (wrapped secret-id, AppRole, KV v2)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.hostconfig import (
    WRAPPED_SECRET_ID_PATH,
    render_boot_config,
    render_secret_fetch_script,
)

WRAPPING_TOKEN = "wrap-token-for-tests"
SECRET_ID = "secret-id-for-tests"
CLIENT_TOKEN = "client-token-for-tests"
VALUES = {"luks-key": "luks-value-for-tests", "wireguard-private-key": "wg-value-for-tests"}


class FakeVault:
    def __init__(self, role_id: str, kv_path: str, values: dict = VALUES) -> None:
        self.calls: list[tuple[str, str]] = []
        self.wrapping_token_used = False
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                vault.calls.append(("POST", self.path))
                if self.path == "/v1/sys/wrapping/unwrap":
                    if self.headers.get("X-Vault-Token") != WRAPPING_TOKEN or vault.wrapping_token_used:
                        return self._reply(400, {"errors": ["wrapping token is not valid or does not exist"]})
                    vault.wrapping_token_used = True
                    return self._reply(200, {"data": {"secret_id": SECRET_ID, "secret_id_accessor": "acc"}})
                if self.path == "/v1/auth/approle/login":
                    if body != {"role_id": role_id, "secret_id": SECRET_ID}:
                        return self._reply(400, {"errors": ["invalid role or secret ID"]})
                    return self._reply(200, {"auth": {"client_token": CLIENT_TOKEN, "lease_duration": 300}})
                return self._reply(404, {"errors": []})

            def do_GET(self):
                vault.calls.append(("GET", self.path))
                if self.path == f"/v1/odoo-hosting/data/{kv_path}":
                    if self.headers.get("X-Vault-Token") != CLIENT_TOKEN:
                        return self._reply(403, {"errors": ["permission denied"]})
                    return self._reply(200, {"data": {"data": values, "metadata": {"version": 1}}})
                return self._reply(404, {"errors": []})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


@pytest.fixture
def host(tmp_path, public_settings):
    vault = FakeVault(f"{public_settings.client_id}-host", f"clients/{public_settings.client_id}/boot")
    run_dir = tmp_path / "run"
    config = json.loads(render_boot_config(public_settings, vault_address=vault.address))
    config["wrapped_secret_id_path"] = str(run_dir / Path(WRAPPED_SECRET_ID_PATH).name)
    config["token_cache_path"] = str(run_dir / "vault-token")
    config["wait_seconds"] = 0.3
    config["network_wait_seconds"] = 0
    # These tests cover a delivered secret-id; test_secret_bootstrap.py covers the bootstrap role.
    config.pop("bootstrap_role_id", None)
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps(config))
    script = tmp_path / "odoo-hosting-secret"
    script.write_text(render_secret_fetch_script())

    def fetch(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), name], capture_output=True, text=True, timeout=30,
                              env={"ODOO_HOSTING_BOOT_CONFIG": str(boot), "PATH": "/usr/bin:/bin"})

    def deliver(token: str = WRAPPING_TOKEN) -> Path:
        run_dir.mkdir(mode=0o700, exist_ok=True)
        wrapped = Path(config["wrapped_secret_id_path"])
        wrapped.write_text(token + "\n")
        return wrapped

    yield fetch, deliver, vault, config
    vault.server.shutdown()


def test_script_is_stdlib_python():
    text = render_secret_fetch_script()
    assert text.startswith("#!/usr/bin/python3\n")
    imports = {line.split()[1] for line in text.splitlines() if line.startswith("import ")}
    assert imports <= {"fcntl", "hashlib", "json", "os", "re", "ssl", "subprocess", "sys", "tempfile", "time",
                       "urllib.error", "urllib.request"}
    assert not [line for line in text.splitlines() if line.lstrip().startswith("from ")]
    # PyYAML (cloud-init's own dependency, so on every cloud image) only where the bundle is read.
    assert [line.strip() for line in text.splitlines() if line.startswith(" ") and "import " in line
            and not line.lstrip().startswith("#")] == ["import yaml  # cloud-init's own dependency"]
    compile(text, "odoo-hosting-secret", "exec")


def test_full_flow_unwrap_login_read(host):
    fetch, deliver, vault, config = host
    wrapped = deliver()
    result = fetch("luks-key")
    assert result.returncode == 0, result.stderr
    assert result.stdout == VALUES["luks-key"] + "\n"
    assert not wrapped.exists()  # single use: deleted
    cache = Path(config["token_cache_path"])
    assert cache.read_text() == CLIENT_TOKEN
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert [c for c in vault.calls if c[0] == "POST"] == [("POST", "/v1/sys/wrapping/unwrap"),
                                                           ("POST", "/v1/auth/approle/login")]
    # The second secret uses the cached token: no second login.
    second = fetch("wireguard-private-key")
    assert second.returncode == 0, second.stderr
    assert second.stdout == VALUES["wireguard-private-key"] + "\n"
    assert sum(1 for c in vault.calls if c[1] == "/v1/auth/approle/login") == 1


def test_missing_secret_fails_without_values(host):
    fetch, deliver, _vault, _config = host
    deliver()
    result = fetch("smtp-password")
    assert result.returncode == 1
    assert "not found" in result.stderr
    for value in (*VALUES.values(), CLIENT_TOKEN, SECRET_ID, WRAPPING_TOKEN):
        assert value not in result.stdout + result.stderr


def test_waits_bounded_for_delivery(host):
    fetch, _deliver, vault, _config = host
    result = fetch("luks-key")
    assert result.returncode == 1
    assert "waiting for the wrapped secret-id" in result.stderr
    assert "no wrapped secret-id delivered" in result.stderr
    assert vault.calls == []


def test_reused_wrapping_token_is_refused(host):
    fetch, deliver, vault, _config = host
    vault.wrapping_token_used = True
    wrapped = deliver()
    result = fetch("luks-key")
    assert result.returncode == 1
    assert "intercepted" in result.stderr
    assert not wrapped.exists()
    assert WRAPPING_TOKEN not in result.stderr


def test_rejects_bad_names(host):
    fetch, *_ = host
    for name in ("../etc", "", "A B"):
        assert fetch(name).returncode == 2


def test_unreachable_vault_keeps_the_wrapped_secret_id(host, tmp_path):
    fetch, deliver, vault, config = host
    vault.server.shutdown()
    vault.server.server_close()
    wrapped = deliver()
    result = fetch("luks-key")
    assert result.returncode == 1
    assert "Vault unreachable" in result.stderr
    assert wrapped.exists()  # not spent: a later attempt can still use it
    assert WRAPPING_TOKEN not in result.stderr
