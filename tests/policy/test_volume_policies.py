"""DSK-01 and REL-01: the data volume is left raw for LUKS and protected from deletion."""

from __future__ import annotations

from odoo_hosting_policies import volume

from .conftest import SERVER, VOLUME, VOLUME_ATTACHMENT, good_server, good_volume, run_policy

NO_FORMAT = volume.hcloud_volume_no_provider_format
PROTECTED = volume.hcloud_volume_protected
SERVER_PROTECTION = volume.hcloud_server_protection_consistent


def volume_with(**changes):
    v = good_volume()
    v.update(changes)
    return v


def test_raw_volume_passes():
    assert run_policy(NO_FORMAT, VOLUME, good_volume()) == []


def test_volume_formatted_by_provider_is_a_violation():
    [message] = run_policy(NO_FORMAT, VOLUME, volume_with(format="ext4"))
    assert "format" in message


def test_volume_automounted_by_provider_is_a_violation():
    [message] = run_policy(NO_FORMAT, VOLUME, volume_with(automount=True))
    assert "automount" in message


def test_volume_attachment_with_automount_is_a_violation():
    assert run_policy(NO_FORMAT, VOLUME_ATTACHMENT, {"serverId": 1, "volumeId": 2, "automount": True})


def test_volume_attachment_without_automount_passes():
    assert run_policy(NO_FORMAT, VOLUME_ATTACHMENT, {"serverId": 1, "volumeId": 2}) == []


def test_protected_volume_passes():
    assert run_policy(PROTECTED, VOLUME, good_volume(), protect=True) == []


def test_volume_without_pulumi_protect_is_a_violation():
    [message] = run_policy(PROTECTED, VOLUME, good_volume(), protect=False)
    assert "protect" in message


def test_volume_without_delete_protection_is_a_violation():
    [message] = run_policy(PROTECTED, VOLUME, volume_with(deleteProtection=False), protect=True)
    assert "deleteProtection" in message


def test_server_with_matching_protections_passes():
    assert run_policy(SERVER_PROTECTION, SERVER, good_server()) == []


def test_server_with_delete_but_not_rebuild_protection_is_a_violation():
    server = good_server()
    server["rebuildProtection"] = False
    assert run_policy(SERVER_PROTECTION, SERVER, server)
