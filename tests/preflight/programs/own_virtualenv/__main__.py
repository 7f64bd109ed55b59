"""Imports a package only its own virtualenv has."""

import sys

import pulumi_hcloud as hcloud
from only_in_this_venv import ROLE

hcloud.Network("net", ip_range="10.0.0.0/16", labels={"role": ROLE, "prefix": sys.prefix.rsplit("/", 1)[-1]})
