"""Every policy is findable by control ID, described, and named consistently."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from pulumi_policy import Policy

import odoo_hosting_policies
from odoo_hosting_policies import ALL_POLICIES

CONTROLS_MD = Path("/work/shared/controls.md")
_KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+){2,}$")


def catalog_ids() -> set:
    if not CONTROLS_MD.is_file():
        pytest.fail(f"{CONTROLS_MD} is missing: cannot check control IDs")
    ids = set(re.findall(r"^\|\s*([A-Z]{2,4}-\d{2})\s*\|", CONTROLS_MD.read_text(), re.MULTILINE))
    assert ids, "no control IDs found in the tables of controls.md"
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
    assert {"RES-01", "ACC-01", "ACC-02", "TLS-02", "DSK-01", "REL-01", "ISO-01"} <= covered
