"""SEC-02: a booting host obtains its own wrapped, single-use secret-id through the address-bound
bootstrap AppRole (no delivery), against a fake Vault; and reads its backup path with --path."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.hostconfig import render_boot_config, render_secret_fetch_script

BOOTSTRAP_TOKEN = "bootstrap-token-for-tests"
WRAPPING_TOKEN = "wrapping-token-for-tests"
SECRET_ID = "secret-id-for-tests"
CLIENT_TOKEN = "client-token-for-tests"


class FakeVault:
    """Vault's AppRole, response-wrapping and KV v2 endpoints, as far as the fetcher uses them."""

    def __init__(self, client: str, creation_path: str | None = None) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.wrapped = False
        self.unwrapped = False
        self.bootstrap_refused = False
        host_role, bootstrap_role = f"{client}-host", f"{client}-bootstrap"
        creation_path = creation_path or f"auth/approle/role/{host_role}/secret-id"
        paths = {f"/v1/odoo-hosting/data/clients/{client}/boot": {"luks-key": "luks-value"},
                 f"/v1/odoo-hosting/data/clients/{client}/backup": {"restic-password": "restic-value"}}
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                vault.calls.append(("POST", self.path, headers))
                if self.path == "/v1/auth/approle/login" and body == {"role_id": bootstrap_role}:
                    if vault.bootstrap_refused:
                        return self._reply(400, {"errors": ["source address unauthorized through CIDR restrictions"]})
                    return self._reply(200, {"auth": {"client_token": BOOTSTRAP_TOKEN, "num_uses": 1}})
                if self.path == f"/v1/auth/approle/role/{host_role}/secret-id":
                    if headers.get("x-vault-token") != BOOTSTRAP_TOKEN or not headers.get("x-vault-wrap-ttl"):
                        return self._reply(403, {"errors": ["permission denied"]})
                    vault.wrapped = True
                    return self._reply(200, {"wrap_info": {"token": WRAPPING_TOKEN, "ttl": 60,
                                                           "creation_path": creation_path}})
                if self.path == "/v1/sys/wrapping/unwrap":
                    if headers.get("x-vault-token") != WRAPPING_TOKEN or vault.unwrapped:
                        return self._reply(400, {"errors": ["wrapping token is not valid or does not exist"]})
                    vault.unwrapped = True
                    return self._reply(200, {"data": {"secret_id": SECRET_ID}})
                if self.path == "/v1/auth/approle/login" and body == {"role_id": host_role, "secret_id": SECRET_ID}:
                    return self._reply(200, {"auth": {"client_token": CLIENT_TOKEN}})
                return self._reply(400, {"errors": ["invalid request"]})

            def do_GET(self):
                vault.calls.append(("GET", self.path, {}))
                if self.path in paths and self.headers.get("X-Vault-Token") == CLIENT_TOKEN:
                    return self._reply(200, {"data": {"data": paths[self.path]}})
                return self._reply(403, {"errors": ["permission denied"]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def _host(tmp_path, settings, vault):
    config = json.loads(render_boot_config(settings, vault_address=vault.address))
    config["wrapped_secret_id_path"] = str(tmp_path / "run" / "secret-id.wrapped")
    config["token_cache_path"] = str(tmp_path / "run" / "vault-token")
    config["wait_seconds"] = 0.3
    config["network_wait_seconds"] = 0
    boot = tmp_path / "boot.json"
    boot.write_text(json.dumps(config))
    script = tmp_path / "odoo-hosting-secret"
    script.write_text(render_secret_fetch_script())

    def fetch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=30,
                              env={"ODOO_HOSTING_BOOT_CONFIG": str(boot), "PATH": "/usr/bin:/bin"})
    return fetch, config


@pytest.fixture
def vault(public_settings):
    v = FakeVault(public_settings.client_id)
    yield v
    v.server.shutdown()


def test_boot_config_names_the_bootstrap_role_and_the_backup_path(public_settings):
    config = json.loads(render_boot_config(public_settings))
    assert config["bootstrap_role_id"] == f"{public_settings.client_id}-bootstrap"
    assert config["kv_paths"]["backup"] == f"clients/{public_settings.client_id}/backup"


def test_bootstrap_mints_a_wrapped_secret_id_then_the_usual_flow_runs(tmp_path, public_settings, vault):
    fetch, config = _host(tmp_path, public_settings, vault)
    result = fetch("luks-key")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "luks-value\n"
    assert "obtained a wrapped secret-id through the bootstrap role" in result.stderr
    posts = [c[1] for c in vault.calls if c[0] == "POST"]
    assert posts == ["/v1/auth/approle/login", f"/v1/auth/approle/role/{public_settings.client_id}-host/secret-id",
                     "/v1/sys/wrapping/unwrap", "/v1/auth/approle/login"]
    mint = vault.calls[1][2]
    assert mint["x-vault-wrap-ttl"] and mint["x-vault-token"] == BOOTSTRAP_TOKEN
    assert not Path(config["wrapped_secret_id_path"]).exists(), "the wrapping token is used once and deleted"
    assert SECRET_ID not in result.stderr + result.stdout and WRAPPING_TOKEN not in result.stderr


def test_path_option_reads_the_backup_secrets_with_the_same_token(tmp_path, public_settings, vault):
    fetch, _config = _host(tmp_path, public_settings, vault)
    assert fetch("luks-key").returncode == 0
    result = fetch("--path", "backup", "restic-password")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "restic-value\n"
    assert len([c for c in vault.calls if c[1] == "/v1/auth/approle/login"]) == 2  # bootstrap + host, once
    assert fetch("--path", "nowhere", "x").returncode == 1


def test_a_refused_bootstrap_falls_back_to_waiting_for_a_delivered_secret_id(tmp_path, public_settings, vault):
    vault.bootstrap_refused = True
    fetch, _config = _host(tmp_path, public_settings, vault)
    result = fetch("luks-key")
    assert result.returncode == 1
    assert "bootstrap failed" in result.stderr and "CIDR" in result.stderr
    assert "no wrapped secret-id delivered" in result.stderr


def test_a_wrapped_answer_for_another_path_is_refused(tmp_path, public_settings):
    vault = FakeVault(public_settings.client_id, creation_path="auth/approle/role/other-client-host/secret-id")
    try:
        fetch, _config = _host(tmp_path, public_settings, vault)
        result = fetch("luks-key")
        assert result.returncode == 1
        assert "did not answer with a wrapped secret-id of this host's role" in result.stderr
        assert not vault.unwrapped
    finally:
        vault.server.shutdown()
