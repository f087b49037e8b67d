from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.run.support import scratch_data_dir


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """An empty GUILDKIT_DATA_DIR; any embedded PostgreSQL left in it is stopped afterwards."""
    with scratch_data_dir() as path:
        yield path
