"""The conformance kit over every installed model: built-ins and whatever plugins are installed."""

from __future__ import annotations

import pytest

import vgzoo
from vgzoo.testing import check_model


@pytest.mark.parametrize("name", vgzoo.list_models())
def test_conformance(name):
    check_model(name)
