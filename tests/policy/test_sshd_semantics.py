"""The effective-sshd model itself (pure functions, no Pulumi)."""

from __future__ import annotations

from odoo_hosting_policies import sshd


def effective(files):
    return sshd.effective_sshd(files)


def test_first_value_wins_across_main_and_drop_ins():
    eff = effective({
        "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\n",
        "/etc/ssh/sshd_config.d/20-b.conf": "PermitRootLogin prohibit-password\n",
        "/etc/ssh/sshd_config.d/10-a.conf": "permitrootlogin no\n",
    })
    assert eff.get("PermitRootLogin") == "no"
    assert eff.origin("PermitRootLogin") == "/etc/ssh/sshd_config.d/10-a.conf"


def test_relative_include_is_relative_to_etc_ssh():
    eff = effective({"/etc/ssh/sshd_config": "Include sshd_config.d/*.conf\n",
                     "/etc/ssh/sshd_config.d/x.conf": "MaxAuthTries 2\n"})
    assert eff.get("MaxAuthTries") == "2"


def test_match_inside_an_included_file_ends_with_that_file():
    eff = effective({
        "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n",
        "/etc/ssh/sshd_config.d/10-match.conf": "Match User bob\n  MaxAuthTries 2\n",
    })
    assert eff.get("PasswordAuthentication") == "no"
    assert [d.keyword for d in eff.match_directives] == ["maxauthtries"]


def test_include_inside_a_match_block_is_conditional():
    eff = effective({
        "/etc/ssh/sshd_config": "Match Address 10.0.0.0/8\nInclude /etc/ssh/extra.conf\n",
        "/etc/ssh/extra.conf": "PasswordAuthentication yes\n",
    })
    assert "passwordauthentication" not in eff.values
    assert any("Match" in f for f in sshd.judge(eff))


def test_hidden_files_are_not_matched_by_a_wildcard():
    eff = effective({"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n",
                     "/etc/ssh/sshd_config.d/.hidden.conf": "PasswordAuthentication yes\n"})
    assert "passwordauthentication" not in eff.values


def test_inline_comment_token_ends_the_line():
    eff = effective({"/etc/ssh/sshd_config": "MaxAuthTries 3 # was 6\n"})
    assert eff.get("MaxAuthTries") == "3"


def test_include_loop_is_bounded():
    eff = effective({"/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config\n"})
    assert eff.problems


def test_weak_algorithm_detection():
    assert sshd.weak_algorithms("+aes128-cbc,aes256-gcm@openssh.com") == ["aes128-cbc"]
    assert sshd.weak_algorithms("-ssh-rsa") == []
    assert sshd.weak_algorithms("^hmac-sha1-etm@openssh.com") == ["hmac-sha1-etm@openssh.com"]
    assert sshd.weak_algorithms("curve25519-sha256,sntrup761x25519-sha512@openssh.com") == []
