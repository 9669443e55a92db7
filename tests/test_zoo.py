"""docs/zoo.md is the catalogue the code generates today, not a copy that went stale."""

from __future__ import annotations

from conftest import REPO
from resnet_lab.zoo import catalogue


def test_docs_zoo_is_up_to_date():
    assert (REPO / "docs" / "zoo.md").read_text() == catalogue(), (
        "docs/zoo.md is stale: regenerate it with `python -m resnet_lab.zoo > docs/zoo.md`")
