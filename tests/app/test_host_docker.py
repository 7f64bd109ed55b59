"""The host side of the app plane: Docker's hardened daemon.json and the app-secrets hand-over."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from components.app.secrets import APP_SECRETS_DIR
from components.hostconfig import render_host
from components.hostconfig.docker import (
    APP_SECRETS_SCRIPT_PATH,
    APP_SECRETS_UNIT_NAME,
    DOCKER_DAEMON_CONFIG_PATH,
    render_app_secrets_script,
    render_app_secrets_unit,
)
from components.hostconfig.paths import DATA_VOLUME_UNIT_NAME
from tests.conftest import EXAMPLE_STACKS, example_settings


@pytest.fixture(params=EXAMPLE_STACKS)
def settings(request):
    return example_settings(request.param)


def test_docker_is_installed_with_a_hardened_daemon_config(settings):
    host = render_host(settings)
    assert "docker.io" in yaml.safe_load(host.user_data)["packages"]
    doc = yaml.safe_load(host.bundle)
    files = {f["path"]: f for f in doc["files"]}
    daemon = json.loads(files[DOCKER_DAEMON_CONFIG_PATH]["content"])
    assert daemon["no-new-privileges"] is True and daemon["live-restore"] is True
    assert daemon["userland-proxy"] is False and daemon["iptables"] is True
    assert daemon["log-opts"]["max-size"]
    activate = [" ".join(c) for c in doc["activate"]]
    assert f"usermod -aG docker {settings.admin_user}" in activate
    assert any(APP_SECRETS_UNIT_NAME in c for c in activate)
    # Docker ran with its defaults before the bundle: it restarts to read daemon.json.
    assert activate[-1] == "systemctl try-restart --no-block docker.service"


def test_every_secret_file_a_container_mounts_is_written_by_the_host(pulumi_run, settings):
    from components.client_stack import ClientStack, ClientStackArgs

    program = pulumi_run(lambda: ClientStack(settings.client_id, ClientStackArgs(settings=settings)))
    sources = {m["source"] for c in program.of_type("docker:index/container:Container") for m in c.inputs["mounts"]
               if m["source"].startswith(APP_SECRETS_DIR + "/")}
    script = render_app_secrets_script(settings)
    written = {f"{APP_SECRETS_DIR}/{line.split()[2]}" for line in script.splitlines() if line.startswith("f app-")}
    assert sources and sources == written


def test_app_secrets_script_is_valid_shell_and_fails_closed(settings):
    script = render_app_secrets_script(settings)
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    assert "set -eu" in script and "mountpoint -q /srv/odoo-data" in script
    assert ("origin.key" in script) is (not settings.public)
    assert "odoo-admin-password 101:101" in script


def test_docker_starts_only_after_the_data_volume_and_the_secrets():
    unit = render_app_secrets_unit()
    assert f"Requires={DATA_VOLUME_UNIT_NAME}" in unit and "Before=docker.service" in unit
    assert "RequiredBy=docker.service" in unit and APP_SECRETS_SCRIPT_PATH in unit
    assert "After=odoo-hosting-data.service network-online.target wg-quick@wg0.service" in unit
