"""Where a command owns the process, what is built to stay is frozen out of the garbage collector's way
(``runtime/heap.py``); anywhere else Python's collections are left as they are."""

from __future__ import annotations

import gc
import weakref

import pytest
from helpers.collector import collector_sees

from resnet_lab.runtime import heap


class Cycle:
    """An object only the garbage collector frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def a_command(monkeypatch):
    monkeypatch.setattr(heap, "_managed", True)
    yield
    gc.unfreeze()  # the test process goes on with its collections as before


def test_what_an_import_builds_is_built_without_collections_and_frozen_after(a_command):
    with heap.kept_for_good():
        assert not gc.isenabled()
        built = [Cycle() for _ in range(100)]
    assert gc.isenabled()
    assert not collector_sees(built[0]) and not collector_sees(built)


def test_settling_frees_the_cycles_that_died_and_freezes_what_lives(a_command):
    dead, alive = Cycle(), Cycle()
    gone = weakref.ref(dead)
    del dead
    heap.settle()
    assert gone() is None
    assert not collector_sees(alive)


def test_what_is_let_go_goes_back_to_the_collector(a_command):
    kept = Cycle()
    heap.settle()
    heap.release()
    assert collector_sees(kept)


def test_outside_a_command_the_collector_is_left_as_it_is():
    assert not heap.managed()
    before = gc.get_freeze_count()
    with heap.kept_for_good():
        assert gc.isenabled()
        built = Cycle()
    heap.settle()
    assert gc.get_freeze_count() == before and collector_sees(built)
