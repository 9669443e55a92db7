"""describe(cfg): the summary, the saved model and the architecture picture."""

from __future__ import annotations

import importlib.util
import json
import shutil

from helpers.configs import compose_config

from resnet_lab.describe import describe, render


def test_text_and_json_tell_the_same_story():
    report = describe(compose_config("describe", ["model=cifar_resnet56", "data=cifar10"]))
    text, one_line = render(report, "text"), render(report, "json")
    assert "depth            56" in text and "853,018" in text
    assert "\n" not in one_line and json.loads(one_line)["params_trainable"] == 853018
    assert json.loads(one_line)["activation_bytes"] == report.activation_bytes > 0


def test_plot_draws_the_network_or_says_in_one_line_why_not(tmp_path, capsys):
    path = tmp_path / "arch.png"
    describe(compose_config("describe", ["model=cifar_resnet20", f"describe.plot={path}"]))
    drawable = importlib.util.find_spec("pydot") is not None and shutil.which("dot") is not None
    if drawable:
        assert path.stat().st_size > 0
    else:
        note = capsys.readouterr().err.strip().splitlines()
        assert len(note) == 1 and note[0].startswith("note: describe.plot=") and "Graphviz" in note[0]
        assert not path.exists()


def test_describe_says_its_model_takes_preprocessed_images_and_saves_it_so(tmp_path):
    """describe loads no data, so its network has no statistics and no input layer: it says what its saved
    model must be given, one line in the text and one field in the JSON."""
    import keras

    from resnet_lab.model.inputs import normalization_of

    path = tmp_path / "net.keras"
    report = describe(compose_config("describe", ["model=cifar_resnet20", f"describe.save_model={path}"]))
    (line,) = [row for row in render(report, "text").splitlines() if row.strip().startswith("takes ")]
    assert "preprocessed images" in line and "no input_normalize layer" in line
    assert json.loads(render(report, "json"))["input"] == report.input
    assert normalization_of(keras.saving.load_model(path)) is None
