"""Every policy is findable by control ID, described, and named consistently."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys

import pytest
from pulumi_policy import Policy

import odoo_hosting_policies
from odoo_hosting_policies import ALL_POLICIES
from odoo_hosting_policies._meta import load_catalog

from .conftest import ROOT

_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+){2,}$")


def catalog_ids() -> set:
    ids = {c["id"] for c in load_catalog()["controls"]}
    assert ids and all(re.fullmatch(r"[A-Z]{2,4}-\d{2}", i) for i in ids), ids
    return ids


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_policy_names_control_ids_from_the_catalog(policy):
    framework = policy.framework
    assert framework is not None and framework.name == "odoo-hosting-controls" and framework.version == "1"
    ids = [i.strip() for i in (framework.reference or "").split(",")]
    assert ids and all(ids), policy.name
    assert set(ids) <= catalog_ids(), (policy.name, ids)
    assert framework.specification


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_policy_has_description_severity_and_remediation(policy):
    assert policy.description.startswith("Checks that ")
    assert policy.severity is not None
    assert policy.remediation_steps and len(policy.remediation_steps) > 20


def test_policy_names_are_unique_kebab_case():
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    assert all(_KEBAB.match(n) for n in names), names


def test_every_policy_defined_in_the_package_is_in_all_policies():
    defined = set()
    for info in pkgutil.iter_modules(odoo_hosting_policies.__path__):
        module = importlib.import_module(f"odoo_hosting_policies.{info.name}")
        defined |= {id(v) for v in vars(module).values() if isinstance(v, Policy)}
    assert defined == {id(p) for p in ALL_POLICIES}


def test_pack_covers_the_resource_level_controls():
    covered = {i for p in ALL_POLICIES for i in p.framework.reference.split(",")}
    assert {"RES-01", "ACC-01", "ACC-02", "TLS-02", "DSK-01", "REL-01", "ISO-01", "BKP-02", "BKP-04", "BKP-05",
            "ISO-02", "TLS-04", "SEC-02"} <= covered


# Controls marked P in the catalog that no policy enforces yet, each with why.
# Remove an entry when its policy lands; a new P control must be covered or listed here.
NOT_YET_COVERED: dict = {
    # BKP-01/BKP-03/INC-01 are judged on the rendered backup agent (hcloud-server-backup-agent).
}


def p_controls() -> set:
    controls = load_catalog()["controls"]
    assert all(set(c["how"]) <= {"P", "T", "D"} and c["how"] for c in controls)
    return {c["id"] for c in controls if "P" in c["how"]}


def test_rendered_catalog_and_promise_table_are_current():
    """docs/controls.md and the README's promise table are the catalog's views."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "render_controls.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = (ROOT / "docs" / "controls.md").read_text()
    assert all(f"| {i} |" in doc for i in catalog_ids())


def test_the_catalog_covers_every_generic_case_and_area():
    catalog = load_catalog()
    assert len(catalog["generic_cases"]["cases"]) >= 10
    assert {c["area"] for c in catalog["controls"]} >= {"Transport encryption", "Backups", "Access control"}


def test_every_p_control_is_enforced_by_a_policy_or_listed_as_not_yet_covered():
    covered = {i.strip() for p in ALL_POLICIES for i in p.framework.reference.split(",")}
    wanted = p_controls()
    missing = wanted - covered - set(NOT_YET_COVERED)
    assert not missing, f"P controls with no policy: {sorted(missing)}"


def test_not_yet_covered_list_is_current():
    covered = {i.strip() for p in ALL_POLICIES for i in p.framework.reference.split(",")}
    stale = set(NOT_YET_COVERED) & covered
    assert not stale, f"now covered, remove from NOT_YET_COVERED: {sorted(stale)}"
    assert set(NOT_YET_COVERED) <= p_controls(), "NOT_YET_COVERED names a control that is not marked P"


# Tunables that are off unless set (no default on purpose).
OPTIONAL_SETTINGS = {"allowedServerTypes"}


@pytest.mark.parametrize("policy", [p for p in ALL_POLICIES if p.config_schema], ids=lambda p: p.name)
def test_every_policy_setting_has_a_default_and_a_description(policy):
    for key, schema in policy.config_schema.properties.items():
        assert "description" in schema, (policy.name, key)
        assert key in OPTIONAL_SETTINGS or "default" in schema, (policy.name, key)


def test_same_setting_has_the_same_default_in_every_policy():
    seen = {}
    for policy in ALL_POLICIES:
        for key, schema in (policy.config_schema.properties if policy.config_schema else {}).items():
            seen.setdefault(key, set()).add(repr(schema.get("default")))
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}
