"""docs/zoo.md is the catalogue the code generates today, not a copy that went stale."""

from __future__ import annotations

import pytest
from helpers.configs import MODEL_PRESETS, REPO

from resnet_lab.zoo import catalogue


@pytest.mark.xdist_group("preset_builds")  # the builds test_presets checks, on the same worker
def test_docs_zoo_is_up_to_date(preset_reports):
    reports = {name: preset_reports[name] for name in MODEL_PRESETS}  # the builds test_presets checks
    assert (REPO / "docs" / "zoo.md").read_text() == catalogue(reports), (
        "docs/zoo.md is stale: regenerate it with `python -m resnet_lab.zoo > docs/zoo.md`")
