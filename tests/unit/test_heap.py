"""settle_heap freezes startup's objects and spaces out young collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from promptline.heap import YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settle_heap_freezes_and_raises_the_young_threshold() -> None:
    gc.unfreeze()
    startup_objects = [{"n": n} for n in range(1000)]  # tracked containers, alive
    _young, middle, old = gc.get_threshold()
    settle_heap()
    assert gc.get_freeze_count() >= len(startup_objects)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
