"""The matrix's context, built once for the whole package (every resource module shares it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.isolation import Ctx, build_ctx
from tests.support.world import World


@pytest.fixture(scope="package")
def ctx(world: World, worker: Any) -> Ctx:
    return build_ctx(world)
