"""Every key at the edge of its grammar, rendered, and each output read back by its real tool (or an
exact parser): the value stays in its slot (issue 16).

The values below are the widest the settings accept: every character a grammar lets through that
some target format (YAML, INI, Caddyfile, systemd, sshd, nftables, HCL, shell, JSON labels) would
read as syntax. What the settings refuse is in tests/unit/test_settings_hostile.py; the renderers'
own guards (a value that is not one token of its format) are tested at the end.
"""

from __future__ import annotations

import configparser
import json
import re
import subprocess

import pytest
import yaml

from components.app.app import connections_label, sso_label
from components.app.caddyfile import ProxySite, proxy_site, render_caddyfile
from components.app.odoo_conf import render_odoo_conf
from components.hostconfig import SSHD_DROPIN_PATH, render_host
from components.hostconfig.paths import NFTABLES_PATH
from components.secrets import render_bootstrap_policy, render_host_policy
from components.settings import SECRET_KEYS, parse_settings
from tests.conftest import example_raw_config, require_tool

from .helpers import materialise, staged, verify_units
from .test_sshd import _sshd, sshd_config_dir

# A URL path and query with every sub-delimiter RFC 3986 allows (shell, Caddy and YAML syntax alike).
HOSTILE_PATH = "/p/'$(id)';&!*,=+@:~%41/(x)?a=(b)&c=$d;e='f'*"
HOSTILE_DN = "cn=o'd \"q\" $(id) `x` {y} #z %s \\n,dc=e;f"


def hostile_raw(stack: str = "example-public") -> dict:
    raw = example_raw_config(stack)
    peer = raw["vpn"]["peers"][0]
    raw.update({
        "clientId": "a1-b2-c3-d4-e5-f6-g7-h8-i9-j0-kz",
        "adminUser": "_op-s_9",
        "maintenanceWindow": "23:30-00:30",
        "backupTime": "01:05",
        "sshKeys": [{"name": "A.b_c-9", "publicKey": raw["sshKeys"][0]["publicKey"].split()[0] + " "
                     + raw["sshKeys"][0]["publicKey"].split()[1] + " \"comment\" $(id) #x {y}\n"}],
        "vpn": {**raw["vpn"], "peers": [{**peer, "name": "Z.z_z-9"}]},
        "incidentContacts": ["x+y%z_q-r.s@EXAMPLE.com", "it@acme-shop.example"],
        "vaultAddress": "https://vault.ops.hosting.example.:8200/",
        "sso": {"microsoft": {"clientId": "a.b_c-d.e-1234", "tenant": "x-y.z"},
                "ldap": {"url": "ldaps://dir.example:6360", "bindDn": HOSTILE_DN, "baseDn": HOSTILE_DN,
                         "userFilter": "(&(uid=%s)(!(x=*))(cn=\"$(id)\"))"}},
        "outsideConnections": [{"name": "outgoing-mail", "url": "smtp://mail.example:2525", "starttls": True},
                               {"name": "Hook.1_x-y", "url": "https://hook.example:8443" + HOSTILE_PATH}],
        "ldapBindPassword": "x",
    })
    if stack == "example-public":
        raw.update({"domains": ["xn--80ak6aa92e.example", "a" * 63 + ".b-c.example."],
                    "acmeEmail": "o.p%q+r_s-t@Hosting.Example"})
    return raw


@pytest.fixture(scope="module", params=["example-public", "example-private"])
def hostile(request):
    return parse_settings(hostile_raw(request.param), secure=SECRET_KEYS)


@pytest.fixture(scope="module")
def staged_root(hostile, tmp_path_factory):
    """User-data and bundle written by cloud-init's own YAML reader and write_files (exact YAML parse)."""
    return materialise(render_host(hostile), tmp_path_factory.mktemp("hostile") / "root")


def test_yaml_user_data_and_bundle_carry_every_file_unchanged(hostile):
    """YAML: the documents parse, and each file's content is what its renderer produced."""
    from components.hostconfig.cloud_config import bundle_files
    host = render_host(hostile)
    assert host.user_data.startswith("#cloud-config\n")
    yaml.safe_load(host.user_data)
    bundle = {f["path"]: f["content"] for f in yaml.safe_load(host.bundle)["files"]}
    assert bundle == {f["path"]: f["content"] for f in bundle_files(hostile)}


def test_sshd_reads_the_admin_user_as_the_one_allowed_user(hostile, staged_root, tmp_path):
    main = sshd_config_dir(tmp_path / "ssh", staged(staged_root, SSHD_DROPIN_PATH).read_text())
    assert _sshd("-t", "-f", str(main)).returncode == 0
    result = _sshd("-T", "-f", str(main), "-C", f"user={hostile.admin_user},host=h,addr=10.66.0.10")
    values = dict(line.partition(" ")[::2] for line in result.stdout.splitlines())
    assert values["allowusers"] == hostile.admin_user


def test_authorized_keys_are_the_reserialised_lines_ssh_keygen_reads(hostile, staged_root):
    path = staged(staged_root, f"/home/{hostile.admin_user}/.ssh/authorized_keys")
    assert path.read_text() == "".join(f"{k.public_key}\n" for k in hostile.ssh_keys)
    result = subprocess.run([require_tool("ssh-keygen"), "-l", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == len(hostile.ssh_keys), result.stderr
    assert "$(id)" not in path.read_text()


def test_nft_accepts_the_rules(hostile, staged_root):
    unshare, nft = require_tool("unshare"), require_tool("nft")
    result = subprocess.run([unshare, "-n", nft, "-c", "-f", str(staged(staged_root, NFTABLES_PATH))],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_systemd_reads_every_unit_and_the_timers_calendar(hostile, staged_root):
    units = sorted(staged(staged_root, "/etc/systemd/system").glob("*.service")) + \
        sorted(staged(staged_root, "/etc/systemd/system").glob("*.timer"))
    result = verify_units(staged_root, *units)
    assert result.returncode == 0, result.stderr
    timer = staged(staged_root, "/etc/systemd/system/odoo-hosting-backup.timer").read_text()
    (calendar,) = re.findall(r"^OnCalendar=(.*)$", timer, re.MULTILINE)
    parsed = subprocess.run([require_tool("systemd-analyze"), "calendar", calendar], capture_output=True, text=True)
    assert parsed.returncode == 0 and "Normalized form: *-*-* 01:05:00 UTC" in parsed.stdout, parsed.stdout


def test_the_shell_reads_backup_env_values_unchanged(hostile, staged_root):
    env_file = staged(staged_root, "/etc/odoo-hosting/backup.env")
    script = 'set -a; . "$1"; printf "%s\\0%s\\0" "$BACKUP_HOST" "$RESTIC_REPOSITORY"'
    result = subprocess.run(["env", "-i", "/bin/bash", "-c", script, "sh", str(env_file)],
                            capture_output=True, text=True, timeout=10)
    host, repository = result.stdout.split("\0")[:2]
    assert host == hostile.client_id and hostile.client_id in repository, result.stderr


def test_caddy_reads_the_email_and_every_address_in_their_slots(hostile, tmp_path):
    site = proxy_site(hostile, origin_certificate=("/certs/origin.pem", "/certs/origin.key"))
    (tmp_path / "Caddyfile").write_text(render_caddyfile(site))
    result = subprocess.run([require_tool("caddy"), "adapt", "--config", str(tmp_path / "Caddyfile"),
                             "--adapter", "caddyfile"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    routes = config["apps"]["http"]["servers"]
    hosts = {h for server in routes.values() for route in server["routes"] for m in route.get("match", [])
             for h in m.get("host", [])}
    assert hosts == set(site.addresses), hosts
    if hostile.public:
        emails = {p.get("email") for policy in config["apps"]["tls"]["automation"]["policies"]
                  for p in policy.get("issuers", [])}
        assert emails == {hostile.acme_email}, emails


def test_odoo_conf_is_read_back_value_for_value(hostile):
    text = render_odoo_conf(hostile)
    parser = configparser.RawConfigParser()  # what Odoo itself uses: no interpolation
    parser.read_string(text)
    assert parser.get("options", "db_name") == hostile.database_name
    assert parser.get("options", "smtp_server") == "mail.example" and parser.get("options", "smtp_port") == "2525"
    assert len(text.splitlines()) == len([line for line in text.splitlines() if line.strip()])


def test_container_labels_are_json_that_reads_back_the_values(hostile):
    sso = json.loads(sso_label(hostile.sso))
    assert sso["ldap"]["baseDn"] == HOSTILE_DN
    connections = json.loads(connections_label(hostile.outside_connections))
    assert connections[1]["url"] == "https://hook.example:8443" + HOSTILE_PATH


_HCL_POLICY = re.compile(r'(?:path "[a-z0-9/_-]+" \{\n(?:  [a-z_]+ = (?:\[(?:"[a-z]+"(?:, )?)+\]|"[0-9a-z]+")\n)+\}\n\n?)+')


def test_vault_hcl_policies_are_exact_path_blocks(hostile):
    """HCL (no HCL parser is packaged): the policies are exactly `path "<slug path>" { key = value }` blocks."""
    for text in (render_host_policy(hostile.client_id), render_bootstrap_policy(hostile.client_id)):
        assert _HCL_POLICY.fullmatch(text), text
        assert all(hostile.client_id in p for p in re.findall(r'path "([^"]+)"', text))


# ---- the renderers' own guards -------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("acme_email", "#ops@x.example"), ("acme_email", "{$CADDYFILE}@x.example"),
                                         ("addresses", ["erp.example\n}"]), ("upstream", "odoo odoo2")])
def test_caddyfile_renderer_refuses_what_caddy_reads_as_syntax(field, value):
    args = {"addresses": ["erp.example"], "upstream": "odoo", "acme_email": "ops@x.example", field: value}
    with pytest.raises(ValueError, match="Caddyfile token"):
        ProxySite(**args)


def test_sshd_renderer_refuses_a_second_argument_or_line():
    import dataclasses

    from components.hostconfig import render_sshd_dropin
    good = parse_settings(example_raw_config("example-public"))
    for bad in ("ops\nPermitRootLogin yes", "ops root", "ops#"):
        with pytest.raises(ValueError, match="AllowUsers"):
            render_sshd_dropin(dataclasses.replace(good, admin_user=bad))


def test_odoo_conf_renderer_refuses_a_continuation_line():
    import dataclasses
    settings = parse_settings(example_raw_config("example-public"))
    bad = dataclasses.replace(settings.outside_connections[0], host="mail.example\n db_host = evil")
    with pytest.raises(ValueError, match="odoo.conf"):
        render_odoo_conf(dataclasses.replace(settings, outside_connections=(bad,)))


def test_the_hostile_values_really_reach_the_files(hostile):
    """The round above tests something: the edge values are in the rendered text."""
    host = render_host(hostile)
    assert hostile.client_id in host.bundle and hostile.admin_user in host.bundle
    if hostile.public:
        assert hostile.acme_email in render_caddyfile(proxy_site(hostile, origin_certificate=("/c", "/k")))
