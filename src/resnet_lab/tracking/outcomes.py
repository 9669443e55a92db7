"""Each run's per-example test outcomes: which test image it got right, as ``outcomes/test.parquet``.

Two runs' outcomes pair up image by image only when both were scored on the same test split, which the
tag ``resnet_lab.test_split`` names: the data set, its split seed, the number of images and a digest of
the arrays themselves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from resnet_lab.tracking.tags import TAG_TEST_SPLIT

ARTIFACT = "outcomes/test.parquet"


def test_split_identity(data: Any, x_test: np.ndarray, y_test: np.ndarray) -> str:
    """``digits split_seed=0 n=360 3f9a2c...``: what must match for outcomes to pair."""
    from resnet_lab.tracking.dataset_logging import digest

    return f"{data.name} split_seed={data.split_seed} n={len(y_test)} {digest(x_test, y_test)}"


def log_outcomes(run: Any, y_true: np.ndarray, predicted: np.ndarray, test_split: str) -> None:
    """Index, true class, predicted class and whether it was right, one row per test image (Parquet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    y_true, predicted = np.asarray(y_true).astype("int32"), np.asarray(predicted).astype("int32")
    table = pa.table({"index": np.arange(len(y_true), dtype="int32"), "true": y_true, "predicted": predicted,
                      "correct": y_true == predicted})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(ARTIFACT).name
        pq.write_table(table, path)
        run.log_artifact(path, str(Path(ARTIFACT).parent))
    run.set_tags({TAG_TEST_SPLIT: test_split})


def load_correct(client: Any, run_id: str) -> Optional[np.ndarray]:
    """The run's right-or-wrong per test image, in index order; None for a run that logged none."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, ARTIFACT, tmp)
        except Exception:  # an older run, or one that failed before testing: no outcomes to pair
            return None
        table = pq.read_table(local, columns=["index", "correct"])
    order = np.argsort(table.column("index").to_numpy())
    return table.column("correct").to_numpy()[order]
