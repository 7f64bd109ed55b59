"""ACC-01: SSH keys on the server and a key-only effective sshd from its user-data."""

from __future__ import annotations

import base64
import gzip

import pytest

from odoo_hosting_policies import ssh
from odoo_hosting_policies.cloudconfig import assess_user_data

from .conftest import HARDENING_DROP_IN, SERVER, UNKNOWN, cloud_config, good_server, run_policy

KEY_ONLY = ssh.hcloud_server_sshd_key_only
SSH_KEYS = ssh.hcloud_server_ssh_keys


def sshd_violations(user_data):
    server = good_server()
    server["userData"] = user_data
    return run_policy(KEY_ONLY, SERVER, server)


def without(line_start: str, text: str = HARDENING_DROP_IN) -> str:
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith(line_start))


# --- sshKeys -------------------------------------------------------------------

def test_server_with_ssh_keys_passes():
    assert run_policy(SSH_KEYS, SERVER, good_server()) == []


def test_server_without_ssh_keys_is_a_violation():
    server = good_server()
    del server["sshKeys"]
    [message] = run_policy(SSH_KEYS, SERVER, server)
    assert "sshKeys" in message


def test_server_with_empty_ssh_keys_list_is_a_violation():
    server = good_server()
    server["sshKeys"] = []
    assert run_policy(SSH_KEYS, SERVER, server)


def test_server_ssh_keys_not_yet_known_ids_count_as_set():
    server = good_server()
    server["sshKeys"] = [UNKNOWN]
    assert run_policy(SSH_KEYS, SERVER, server) == []


def test_ssh_keys_policy_ignores_other_resource_types():
    assert run_policy(SSH_KEYS, "hcloud:index/volume:Volume", {"size": 10}) == []


# --- user-data: baseline and plain settings ------------------------------------

def test_realistic_key_only_cloud_config_passes():
    assert run_policy(KEY_ONLY, SERVER, good_server()) == []


def test_server_without_user_data_is_a_violation():
    server = good_server()
    del server["userData"]
    [message] = run_policy(KEY_ONLY, SERVER, server)
    assert "no userData" in message


@pytest.mark.parametrize("keyword", ["PermitRootLogin", "AuthenticationMethods", "MaxAuthTries"])
def test_drop_in_missing_a_keyword_whose_sshd_default_is_loose_is_a_violation(keyword):
    violations = sshd_violations(cloud_config(without(keyword)))
    assert any(keyword in v for v in violations), violations


def test_drop_in_without_password_authentication_relies_on_ssh_pwauth_false():
    assert sshd_violations(cloud_config(without("PasswordAuthentication"))) == []


def test_drop_in_without_password_authentication_and_no_ssh_pwauth_is_a_violation():
    violations = sshd_violations(cloud_config(without("PasswordAuthentication"), ssh_pwauth=None))
    assert any("PasswordAuthentication" in v for v in violations), violations


def test_drop_in_without_kbd_interactive_passes_because_debian_main_config_says_no():
    assert sshd_violations(cloud_config(without("KbdInteractiveAuthentication"))) == []


def test_password_authentication_yes_in_drop_in_is_a_violation():
    text = HARDENING_DROP_IN.replace("PasswordAuthentication no", "PasswordAuthentication yes")
    assert any("PasswordAuthentication" in v for v in sshd_violations(cloud_config(text)))


def test_keywords_are_case_insensitive():
    text = HARDENING_DROP_IN.replace("PasswordAuthentication no", "passwordauthentication YES")
    assert any("PasswordAuthentication" in v for v in sshd_violations(cloud_config(text)))


def test_keyword_equals_value_syntax_is_read():
    text = HARDENING_DROP_IN.replace("PermitRootLogin no", "PermitRootLogin=yes")
    assert any("PermitRootLogin" in v for v in sshd_violations(cloud_config(text)))


def test_challenge_response_alias_counts_as_kbd_interactive():
    text = "ChallengeResponseAuthentication yes\n" + without("KbdInteractiveAuthentication")
    assert any("KbdInteractiveAuthentication" in v for v in sshd_violations(cloud_config(text)))


def test_max_auth_tries_above_three_is_a_violation():
    text = HARDENING_DROP_IN.replace("MaxAuthTries 3", "MaxAuthTries 4")
    assert any("MaxAuthTries" in v for v in sshd_violations(cloud_config(text)))


def test_authentication_methods_allowing_password_is_a_violation():
    text = HARDENING_DROP_IN.replace("AuthenticationMethods publickey", "AuthenticationMethods publickey password")
    assert any("AuthenticationMethods" in v for v in sshd_violations(cloud_config(text)))


@pytest.mark.parametrize("line", [
    "Ciphers aes256-cbc,aes256-gcm@openssh.com",
    "Ciphers +3des-cbc",
    "Ciphers ^arcfour",
    "MACs hmac-sha1,hmac-sha2-256",
    "MACs +hmac-md5-96",
    "KexAlgorithms +diffie-hellman-group1-sha1",
    "KexAlgorithms diffie-hellman-group14-sha1",
    "KexAlgorithms +diffie-hellman-group-exchange-sha1",
    "HostKeyAlgorithms +ssh-rsa",
    "PubkeyAcceptedKeyTypes +ssh-dss",
    "MACs +umac-64@openssh.com",
    "Ciphers +*-cbc",
])
def test_weak_algorithm_enabled_first_is_a_violation(line):
    keyword = line.split()[0]
    text = line + "\n" + without(keyword)
    assert sshd_violations(cloud_config(text)), line


def test_removing_weak_algorithms_with_minus_passes():
    text = HARDENING_DROP_IN + "HostKeyAlgorithms -ssh-rsa\n"
    assert sshd_violations(cloud_config(text)) == []


# --- file order: first value wins ------------------------------------------------

def test_later_drop_in_does_not_override_earlier_one():
    later = ("  - path: /etc/ssh/sshd_config.d/90-late.conf\n"
             "    content: |\n"
             "      PasswordAuthentication yes\n"
             "      PermitRootLogin yes\n")
    assert sshd_violations(cloud_config(extra_files=later)) == []


def test_earlier_drop_in_overrides_the_hardening_one():
    earlier = ("  - path: /etc/ssh/sshd_config.d/05-early.conf\n"
               "    content: |\n"
               "      PasswordAuthentication yes\n")
    violations = sshd_violations(cloud_config(extra_files=earlier))
    assert any("PasswordAuthentication" in v and "05-early.conf" in v for v in violations), violations


def test_hardening_in_60_drop_in_loses_to_image_50_cloud_init_when_ssh_pwauth_absent():
    user_data = cloud_config(path="/etc/ssh/sshd_config.d/60-hardening.conf", ssh_pwauth=None)
    violations = sshd_violations(user_data)
    assert any("PasswordAuthentication" in v and "50-cloud-init.conf" in v for v in violations), violations


def test_ssh_pwauth_true_writes_50_cloud_init_that_beats_a_60_drop_in():
    user_data = cloud_config(path="/etc/ssh/sshd_config.d/60-hardening.conf", ssh_pwauth="true")
    violations = sshd_violations(user_data)
    assert any("ssh_pwauth is true" in v for v in violations)
    assert any("PasswordAuthentication" in v and "50-cloud-init.conf" in v for v in violations)


def test_ssh_pwauth_false_with_60_drop_in_passes():
    user_data = cloud_config(path="/etc/ssh/sshd_config.d/60-hardening.conf", ssh_pwauth="false")
    assert sshd_violations(user_data) == []


def test_ssh_pwauth_true_is_flagged_even_when_an_earlier_drop_in_says_no():
    violations = sshd_violations(cloud_config(ssh_pwauth="true"))
    assert violations == [v for v in violations if "ssh_pwauth" in v] and len(violations) == 1


def test_disable_root_false_is_a_violation():
    user_data = cloud_config().replace("disable_root: true", "disable_root: false")
    assert any("disable_root" in v for v in sshd_violations(user_data))


def test_drop_in_that_sorts_after_and_is_not_conf_is_ignored():
    other = ("  - path: /etc/ssh/sshd_config.d/00-override.conf.bak\n"
             "    content: |\n"
             "      PasswordAuthentication yes\n")
    assert sshd_violations(cloud_config(extra_files=other)) == []


def test_replaced_main_config_without_include_ignores_drop_ins():
    main = ("  - path: /etc/ssh/sshd_config\n"
            "    content: |\n"
            "      UsePAM yes\n"
            "      PasswordAuthentication yes\n")
    violations = sshd_violations(cloud_config(extra_files=main, ssh_pwauth=None))
    assert any("PasswordAuthentication" in v and "/etc/ssh/sshd_config)" in v for v in violations), violations


def test_replaced_main_config_that_includes_drop_ins_first_passes():
    main = ("  - path: /etc/ssh/sshd_config\n"
            "    content: |\n"
            "      Include /etc/ssh/sshd_config.d/*.conf\n"
            "      PasswordAuthentication yes\n")
    assert sshd_violations(cloud_config(extra_files=main)) == []


def test_deferred_write_of_50_cloud_init_overrides_ssh_pwauth():
    deferred = ("  - path: /etc/ssh/sshd_config.d/50-cloud-init.conf\n"
                "    defer: true\n"
                "    content: |\n"
                "      PasswordAuthentication yes\n")
    user_data = cloud_config(path="/etc/ssh/sshd_config.d/60-hardening.conf", extra_files=deferred)
    assert any("PasswordAuthentication" in v and "50-cloud-init.conf" in v for v in sshd_violations(user_data))


def test_non_deferred_write_of_50_cloud_init_is_overridden_by_ssh_pwauth_false():
    early = ("  - path: /etc/ssh/sshd_config.d/50-cloud-init.conf\n"
             "    content: |\n"
             "      PasswordAuthentication yes\n")
    user_data = cloud_config(path="/etc/ssh/sshd_config.d/60-hardening.conf", extra_files=early)
    assert sshd_violations(user_data) == []


# --- Match blocks ------------------------------------------------------------------

def test_match_block_enabling_passwords_is_a_violation():
    text = HARDENING_DROP_IN + "Match Address 203.0.113.0/24\n    PasswordAuthentication yes\n"
    violations = sshd_violations(cloud_config(text))
    assert any("Match Address" in v for v in violations), violations


def test_match_block_permitting_root_is_a_violation():
    text = HARDENING_DROP_IN + "Match User deploy\n    PermitRootLogin prohibit-password\n"
    assert any("PermitRootLogin" in v for v in sshd_violations(cloud_config(text)))


def test_match_block_with_non_publickey_methods_is_a_violation():
    text = HARDENING_DROP_IN + "Match Group sftp\n    AuthenticationMethods keyboard-interactive\n"
    assert any("AuthenticationMethods" in v for v in sshd_violations(cloud_config(text)))


def test_match_block_that_only_tightens_passes():
    text = HARDENING_DROP_IN + "Match User sftp\n    ForceCommand internal-sftp\n    MaxAuthTries 2\n"
    assert sshd_violations(cloud_config(text)) == []


def test_setting_after_match_block_is_not_global():
    text = "Match User ops\n    PasswordAuthentication no\n" + without("PasswordAuthentication")
    # The only "no" is conditional; the image's 50-cloud-init.conf says yes globally.
    assert any("PasswordAuthentication" in v for v in sshd_violations(cloud_config(text, ssh_pwauth=None)))


# --- encodings and formats ---------------------------------------------------------

def _encoded_entry(encoding: str, data: bytes) -> str:
    return ("  - path: /etc/ssh/sshd_config.d/01-encoded.conf\n"
            f"    encoding: {encoding}\n"
            f"    content: {data.decode()}\n")


@pytest.mark.parametrize("encoding", ["b64", "base64"])
def test_base64_write_files_entry_is_decoded(encoding):
    data = base64.b64encode(b"PasswordAuthentication yes\n")
    assert any("01-encoded.conf" in v for v in sshd_violations(cloud_config(extra_files=_encoded_entry(encoding, data))))


@pytest.mark.parametrize("encoding", ["gz+b64", "gzip+base64"])
def test_gzip_base64_write_files_entry_is_decoded(encoding):
    data = base64.b64encode(gzip.compress(b"PermitRootLogin yes\n"))
    assert any("01-encoded.conf" in v for v in sshd_violations(cloud_config(extra_files=_encoded_entry(encoding, data))))


def test_jinja_template_cloud_config_is_judged():
    user_data = "## template: jinja\n" + cloud_config().replace("acme-odoo", "{{ v1.local_hostname }}")
    assert sshd_violations(user_data) == []


def test_jinja_expression_in_sshd_setting_is_a_violation():
    text = HARDENING_DROP_IN.replace("PermitRootLogin no", "PermitRootLogin {{ ds.meta_data.root }}")
    assert any("PermitRootLogin" in v for v in sshd_violations("## template: jinja\n" + cloud_config(text)))


def test_jinja_template_with_statements_cannot_be_judged():
    user_data = "## template: jinja\n" + cloud_config() + "{% if v1.region %}bootcmd: []{% endif %}\n"
    [message] = sshd_violations(user_data)
    assert "cannot" in message


def test_shell_script_user_data_cannot_be_judged_and_is_a_violation():
    [message] = sshd_violations("#!/bin/bash\nsed -i 's/^#PasswordAuthentication.*/PasswordAuthentication no/' /etc/ssh/sshd_config\n")
    assert "shell script" in message and "cannot" in message


def test_mime_multipart_user_data_cannot_be_judged_and_is_a_violation():
    user_data = ('Content-Type: multipart/mixed; boundary="==B=="\nMIME-Version: 1.0\n\n--==B==\n'
                 'Content-Type: text/cloud-config\n\n' + cloud_config() + "--==B==--\n")
    [message] = sshd_violations(user_data)
    assert "MIME" in message


def test_invalid_yaml_cloud_config_is_a_violation_without_echoing_content():
    [message] = sshd_violations("#cloud-config\nwrite_files: [\n  secret: hunter2-very-secret\n")
    assert "not valid cloud-config YAML" in message and "hunter2" not in message


def test_unknown_user_data_is_reported_instead_of_passing():
    server = good_server()
    server["userData"] = UNKNOWN
    [message] = run_policy(KEY_ONLY, SERVER, server)
    assert "unknown at preview" in message and "cannot" in message


def test_user_data_assessment_is_cached_by_content():
    text = cloud_config()
    assert assess_user_data(text) is assess_user_data(text)
