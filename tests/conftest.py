"""Shared fixtures. Tests run on CPU with tiny models and never touch the network."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach the Hub
# Downloads, converted weights and feature caches of the tests stay out of the user's ~/.cache/vgzoo.
os.environ.setdefault("VGZOO_CACHE", tempfile.mkdtemp(prefix="vgzoo-test-cache-"))

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:  # `pytest -n N`: the cores are shared among N processes, not a thread per core in each
    # (the commands the tests start inherit it: OpenMP threads beyond the cores wait for each other at every op)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` first: under ``pytest -n`` the long ones then overlap the many short ones instead of
    running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _cpu_default_device(request, monkeypatch):
    """fit() defaults to CUDA when it is visible; the CPU suite pins its default to the CPU (the DDP subprocesses
    inherit it). tests/test_cuda.py keeps CUDA."""
    if request.node.path.name != "test_cuda.py":
        monkeypatch.setenv("VGZOO_DEVICE", os.environ.get("VGZOO_TEST_DEVICE", "cpu"))


@pytest.fixture
def tiny_model_name():
    """Register the run-time test model ``tiny_core_net`` for one test, and remove it afterwards."""
    import _tiny

    _tiny.register()
    yield _tiny.NAME
    _tiny.unregister()


@pytest.fixture
def plugin_task(monkeypatch):
    """``plugin_task(name, like, **changes)`` registers a task record as a plugin would (a built-in task's parts under
    a new name, ``changes`` replaced) through ``vgzoo.tasks.register_task``, and removes it after the test."""
    import dataclasses

    from vgzoo import tasks

    def register(name: str, like: str, **changes):
        record = dataclasses.replace(tasks.BUILTIN_TASKS[like], name=name, aliases=(), **changes)
        monkeypatch.setitem(tasks._plugin_tasks, name, None)  # restored (removed) when the test ends
        return tasks.register_task(record)

    return register
