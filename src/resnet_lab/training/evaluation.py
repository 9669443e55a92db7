"""What a finished run leaves to look at: test metrics, confusion matrix, per-class accuracy and curves."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

# Curves drawn from the per-epoch records, one panel each (the validation twin shares the panel).
CURVE_PANELS = (("loss", "val_loss"), ("accuracy", "val_accuracy"), ("learning_rate",))


def loss_and_accuracy(model: Any, y_true: np.ndarray, logits: np.ndarray) -> Tuple[float, float]:
    """The loss and accuracy ``model.evaluate`` reports, from the logits already predicted: the compiled loss over
    every image plus the regularization terms, and the share of images whose largest logit is their label. It
    spares a second pass over the images, and a second inference function to trace."""
    import keras

    loss = model.compute_loss(y=y_true, y_pred=logits, training=False)
    accuracy = np.mean(np.argmax(logits, axis=-1) == np.reshape(y_true, (-1,)))
    return float(keras.ops.convert_to_numpy(loss)), float(accuracy)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    return matrix


def per_class_rows(matrix: np.ndarray, class_names: Sequence[str]) -> List[Dict[str, Any]]:
    names = list(class_names) or [str(i) for i in range(len(matrix))]
    rows = []
    for i, name in enumerate(names):
        total = int(matrix[i].sum())
        rows.append({"class": name, "images": total, "correct": int(matrix[i, i]),
                     "accuracy": float(matrix[i, i] / total) if total else float("nan")})
    return rows


def to_csv(rows: List[Dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: Path) -> None:
    plt = _pyplot()
    n = len(matrix)
    size = min(16.0, 3.0 + 0.45 * n)
    figure, axes = plt.subplots(figsize=(size, size * 0.9))
    shown = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(shown, ax=axes, fraction=0.046)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"confusion matrix, test split ({int(matrix.sum())} images)")
    if n <= 30:  # beyond that, names and counts are unreadable; the CSV has them
        names = list(class_names) or [str(i) for i in range(n)]
        axes.set_xticks(range(n), names, rotation=90)
        axes.set_yticks(range(n), names)
        threshold = matrix.max() / 2
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if matrix[i, j] > threshold else "black")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_curves(history: List[Dict[str, float]], path: Path) -> None:
    plt = _pyplot()
    epochs = list(range(1, len(history) + 1))
    figure, panels = plt.subplots(1, len(CURVE_PANELS), figsize=(5 * len(CURVE_PANELS), 3.6))
    for axes, keys in zip(panels, CURVE_PANELS):
        for key in keys:
            values = [record.get(key, float("nan")) for record in history]
            axes.plot(epochs, values, marker="." if len(epochs) < 40 else None, label=key)
        axes.set_xlabel("epoch")
        axes.set_title(keys[0])
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt
