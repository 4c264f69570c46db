from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Receiver


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path / "rx")
    r.tmp.mkdir()
    r.start()
    try:
        yield r
    finally:
        r.stop()
