"""Fixtures for the host-configuration renderers: the two example stacks."""

from __future__ import annotations

import pytest

from components.settings import Settings
from tests.conftest import EXAMPLE_STACKS, example_settings


@pytest.fixture(scope="session")
def public_settings() -> Settings:
    return example_settings("example-public")


@pytest.fixture(scope="session")
def private_settings() -> Settings:
    return example_settings("example-private")


@pytest.fixture(params=EXAMPLE_STACKS, scope="session")
def settings(request) -> Settings:
    return example_settings(request.param)
