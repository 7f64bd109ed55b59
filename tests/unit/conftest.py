"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from components.client_stack import ClientStack, ClientStackArgs
from tests.conftest import EXAMPLE_STACKS, example_settings


@pytest.fixture(params=EXAMPLE_STACKS)
def built(request, pulumi_run):
    """(settings, program) of each example stack under mocks (modules with their own ``built`` override it)."""
    settings = example_settings(request.param)
    program = pulumi_run(lambda: ClientStack(settings.client_id, ClientStackArgs(settings=settings)),
                         stack=request.param)
    return settings, program
