"""Fixtures for the response actions' tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wgsiem.lab.runtime import Lab
from wgsiem.respond.actions.base import ActionContext

from .support import context


@pytest.fixture
def lab_ctx(make_lab: Callable[..., Lab], tmp_path: Path) -> Callable[..., tuple[Lab, ActionContext]]:
    def factory(clients: int = 2, **settings: Any) -> tuple[Lab, ActionContext]:
        lab = make_lab(clients=clients)
        return lab, context(lab, tmp_path, **settings)

    return factory
