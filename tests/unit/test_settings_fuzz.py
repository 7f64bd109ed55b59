"""Property-based fuzzing of the settings (issue 16), bounded: derandomized, a fixed number of examples.

For any config made by mutating an example stack's values (hostile strings, other scripts' digits,
control characters, numbers at the edges, wrong types, case-only duplicates, unknown keys, secrets in
plain text): either ONE clean SettingsError (one printable line, naming a key, never showing a
secret, an unknown key's value or a credential), or settings whose rendered files parse with exact
parsers (YAML, JSON, INI, shell words, sshd lines) and keep each value in its slot. Real tools read
the edge values in tests/system/test_hostile_render.py; running them per example would not fit.
"""

from __future__ import annotations

import configparser
import json
import shlex
import string

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.app.caddyfile import proxy_site, render_caddyfile
from components.app.odoo_conf import render_odoo_conf
from components.hostconfig import render_host, render_sshd_dropin
from components.hostconfig.backup import render_backup_env
from components.settings import KEYS, NAMESPACE, SECRET_KEYS, SettingsError, parse_settings
from tests.conftest import example_raw_config
from tests.system.test_hostile_render import hostile_raw

MARKER = "Zq7Secret"
"""Planted in values that must never be shown; its presence in an error is a leak."""

_SPECIAL = "\n\r\t\x00\x0b\x85\u2028 #{}$\"'`;&|<>\\%*?=:@/,.-_+()[]!~^"
_DIGITS = "0123456789\u0661\u0663\uff10\u0967"

_text = st.text(alphabet=st.sampled_from(string.ascii_letters + _DIGITS + _SPECIAL), max_size=40)
_scalar = st.one_of(
    _text, st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.none(), st.just(""), st.just("x" * 3000),
)
_value = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(_text, inner, max_size=3)), max_leaves=6)


def _mutations(value):
    """Near-misses of a valid value: the way careless edits and attacks look."""
    if isinstance(value, str):
        return st.one_of(
            st.sampled_from([value + "\n", " " + value, value.upper(), value + "#x", value[:-1],
                             value.replace("0", "\u0660"), value + "\x00", "{$CADDYFILE}" + value,
                             value[:-2] + "F=" if value.endswith("E=") else value + "$(id)"]),
            st.builds(lambda t, i: value[:i] + t + value[i:], _text, st.integers(0, len(value))))
    if isinstance(value, list) and value:
        return st.one_of(st.just(value + value), st.just([]), st.just(value[:1] * 200),
                         st.builds(lambda v: [v, *value[1:]], _value))
    if isinstance(value, dict) and value:
        return st.builds(lambda k, v: {**value, k: v}, st.sampled_from([*value, "extraField"]), _value)
    return _value


@st.composite
def configs(draw):
    stack = draw(st.sampled_from(["example-public", "example-private"]))
    raw = example_raw_config(stack)
    edge = hostile_raw(stack)  # the widest accepted values, so many examples get as far as rendering
    for key in draw(st.lists(st.sampled_from(sorted(set(KEYS) | set(edge))), max_size=4, unique=True)):
        if key in SECRET_KEYS:
            raw[key] = draw(st.sampled_from([MARKER, MARKER + "\n", 12345, None]))
        elif key in edge and draw(st.integers(0, 2)) < 2:
            raw[key] = edge[key]
        else:
            raw[key] = draw(_mutations(raw[key]) if key in raw else _value)
    if draw(st.integers(0, 7)) == 0:
        raw[draw(st.sampled_from(["smtpPasword", "clientid", "ldapBindPasswd", "x\u0130y"]))] = MARKER
    secure = draw(st.one_of(st.just(frozenset(SECRET_KEYS)), st.sets(st.sampled_from(sorted(SECRET_KEYS)))))
    return raw, secure


def _check_error(err: SettingsError, raw: dict) -> None:
    text = str(err)
    assert "\n" not in text and text.isprintable(), text
    assert text.startswith(f"{NAMESPACE}:"), text
    root = err.key.split(".")[0].split("[")[0]
    assert root in KEYS or root in raw, err.key
    assert MARKER not in text, text
    assert len(text) < 1200, len(text)


def _check_rendered(s) -> None:
    host = render_host(s)
    yaml.safe_load(host.user_data)
    files = {f["path"]: f["content"] for f in yaml.safe_load(host.bundle)["files"]}
    for line in render_sshd_dropin(s).splitlines():
        if not line.startswith("#"):
            assert len(line.split()) == 2, line
    assert f"AllowUsers {s.admin_user}\n" in files["/etc/ssh/sshd_config.d/00-odoo-hosting.conf"]
    env = {}
    for line in render_backup_env(s).splitlines():
        if line and not line.startswith("#"):
            (word,) = shlex.split(line)
            key, _, value = word.partition("=")
            env[key] = value
    assert env["BACKUP_HOST"] == s.client_id
    parser = configparser.RawConfigParser()
    parser.read_string(render_odoo_conf(s))
    assert parser.get("options", "db_name") == s.database_name
    caddyfile = render_caddyfile(proxy_site(s, origin_certificate=("/c.pem", "/k.pem")))
    if s.public:
        assert f"\temail {s.acme_email}\n" in caddyfile
    json.loads(files["/etc/docker/daemon.json"])


@settings(max_examples=800, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(configs())
def test_any_config_is_one_clean_error_or_files_that_parse(config):
    raw, secure = config
    try:
        s = parse_settings(raw, secure=secure)
    except SettingsError as err:
        event("refused")
        _check_error(err, raw)
        return
    event("accepted and rendered")
    _check_rendered(s)
