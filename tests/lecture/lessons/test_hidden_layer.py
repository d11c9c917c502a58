"""One hidden layer further: linear vs two-layer net on spiral and moons, the net's graph and its checks."""

import json

import numpy as np
import pytest
from PIL import Image

from tinygrad_softmax import ops
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.lessons.hidden_layer import (
    build_two_layer_net,
    compare_mlp,
    run_hidden_layer,
)
from tinygrad_softmax.lecture.training.boundaries import plot_decision_boundaries
from tinygrad_softmax.lecture.training.train import save_pictures, train
from tinygrad_softmax.lecture.views import viz

# The four trainings and two pictures are made once per worker: their tests share one worker.
PLANAR = pytest.mark.xdist_group("planar")


@pytest.fixture(scope="module")
def planar(tmp_path_factory):
    """Linear and MLP on spiral and moons (seed 0, defaults), with their side-by-side pictures."""
    out = tmp_path_factory.mktemp("boundaries")
    return run_hidden_layer(out, log=None), out


@PLANAR
def test_a_hidden_layer_separates_the_spiral_that_a_linear_softmax_cannot(planar):
    runs = planar[0].runs
    linear, mlp = runs[("spiral", "linear")], runs[("spiral", "mlp")]
    assert linear.train_accuracy[-1] < 0.60
    assert mlp.train_accuracy[-1] >= 0.97 and mlp.test_accuracy[-1] >= 0.9
    assert runs[("moons", "linear")].train_accuracy[-1] < 0.92
    assert runs[("moons", "mlp")].train_accuracy[-1] >= 0.97
    assert mlp.model == "mlp" and mlp.hidden == 100 and linear.model == "linear"
    assert [p.shape for p in mlp.network.parameters()] == [(100, 2), (100, 1), (3, 100), (3, 1)]


def test_adam_and_momentum_train_the_mlp_too():
    adam = train("spiral", model="mlp", optimizer="adam", log=None)
    assert adam.lr == 0.01 and adam.train_accuracy[-1] >= 0.97
    momentum = train("spiral", model="mlp", momentum=0.9, lr=0.05, epochs=300, log=None)
    assert momentum.train_accuracy[-1] >= 0.97
    assert "momentum 0.9" in momentum.description and "Adam (lr 0.01)" in adam.description


def test_mlp_training_is_repeatable_and_its_first_step_is_plain_gradient_descent():
    first = train("moons", model="mlp", epochs=20, log=None)
    again = train("moons", model="mlp", epochs=20, log=None)
    assert first.train_loss == again.train_loss
    for p, q in zip(first.network.parameters(), again.network.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert train("moons", model="mlp", epochs=20, seed=1, log=None).train_loss != first.train_loss


def test_bad_model_settings_are_refused():
    with pytest.raises(ValueError, match="unknown model 'cnn'"):
        train("spiral", model="cnn", log=None)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train("spiral", optimizer="rmsprop", log=None)
    with pytest.raises(ValueError, match="hidden width"):
        train("spiral", model="mlp", hidden=0, log=None)
    with pytest.raises(ValueError, match="momentum belongs to sgd"):
        train("spiral", optimizer="adam", momentum=0.9, log=None)


@PLANAR
def test_decision_boundary_pictures_are_real_slide_sized_images(planar):
    result, out = planar
    assert set(result.pictures) == {"spiral", "moons"}
    for dataset, path in result.pictures.items():
        assert path == out / f"{dataset}-boundaries.png"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (1920, 1080)  # 16:9
            rgb = np.asarray(image.convert("RGB"))
        left, right = rgb[:, : rgb.shape[1] // 2], rgb[:, rgb.shape[1] // 2 :]
        assert not np.array_equal(left, right)  # two different models on the same data
    assert not any(out.glob(".tmp-*"))  # written whole, then renamed into place


@PLANAR
def test_the_pictures_colour_the_plane_by_the_predicted_class(planar, tmp_path):
    """Every class's region appears in both spiral panels: tinted pixels of each class colour."""
    from tinygrad_softmax.lecture.training.boundaries import CLASS_COLOURS, _tint

    with Image.open(planar[1] / "spiral-boundaries.png") as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)
    half = rgb.shape[1] // 2
    for panel in (rgb[:, :half], rgb[:, half:]):
        for colour in CLASS_COLOURS[:3]:
            tint = np.round(np.array(_tint(colour)) * 255).astype(int)
            share = np.mean(np.all(np.abs(panel - tint) <= 2, axis=-1))
            assert share > 0.03, (colour, share)


@PLANAR
def test_predict_is_the_trained_network_on_standardised_points(planar):
    run = planar[0].runs[("spiral", "mlp")]
    predicted = run.predict(run.dataset.X[run.train_rows])
    assert np.mean(predicted == run.dataset.labels[run.train_rows]) == pytest.approx(run.train_accuracy[-1])
    assert predicted.shape == (run.train_size,)


@PLANAR
def test_decision_boundaries_refuse_what_they_cannot_draw(planar, tmp_path):
    runs = planar[0].runs
    with pytest.raises(ValueError, match="same data"):
        plot_decision_boundaries([runs[("spiral", "mlp")], runs[("moons", "mlp")]], tmp_path / "x.png")
    iris = train("iris", epochs=2, log=None)
    with pytest.raises(ValueError, match="4 features"):
        plot_decision_boundaries([iris], tmp_path / "x.png")
    with pytest.raises(ValueError, match="no runs"):
        plot_decision_boundaries([], tmp_path / "x.png")


def test_train_pictures_for_the_mlp_and_the_planar_sets(tmp_path):
    run = train("moons", model="mlp", epochs=30, log=None)
    paths = save_pictures(run, tmp_path)
    assert [p.name for p in paths] == ["moons-mlp-loss.png", "moons-mlp-boundary.png"]
    digits = train("digits", model="mlp", hidden=16, epochs=3, log=None)
    assert [p.name for p in save_pictures(digits, tmp_path)] == ["digits-mlp-loss.png"]  # W2 is no image
    with Image.open(paths[1]) as image:
        assert image.size == (1920, 1080)


# ---------------------------------------------------------------- the small net: graph and checks


def test_the_two_layer_net_names_every_tensor_of_its_graph():
    net = build_two_layer_net()
    assert (net.Z1.name, net.H1.name, net.Z2.name, net.loss.name) == ("Z1", "H1", "Z2", "loss")
    assert net.H1.op == "relu" and net.H1.parents == (net.Z1,)
    assert set(net.parameters) == {"W1", "b1", "W2", "b2"}
    assert sorted(set(net.labels.tolist())) == [0, 1, 2]  # every class among the labels
    assert all(p.grad is not None for p in net.parameters.values())
    row = build_two_layer_net("row")
    assert row.Z2.shape == (5, 3) and row.Z1.shape == (5, 4)
    np.testing.assert_allclose(row.Z2.data, net.Z2.data.T)  # same numbers, transposed layout


@pytest.mark.numerics
@pytest.mark.parametrize("layout", ["column", "row"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compare_mlp_checks_every_parameter_and_finds_p_minus_y_at_the_logits(layout, dtype):
    result = compare_mlp(layout, dtype, with_dx=True)
    assert result.passed, result.to_text()
    assert [r.name for r in result.rows] == ["W1", "b1", "W2", "b2", "X"]
    assert all(r.verdict == "ok" for r in result.rows)
    assert result.logits_rel < (1e-15 if dtype == "float64" else 1e-6)
    np.testing.assert_allclose(
        result.logits_grad, result.closed_form, atol=1e-15 if dtype == "float64" else 1e-7
    )
    text = result.to_text()
    assert "no closed form" in text and "Z2.grad = (P − Y)/N" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    data = json.loads(result.to_json())
    assert data["passed"] and data["logits"]["autograd_vs_closed_form_rel"] == result.logits_rel


def test_compare_mlp_catches_a_wrong_relu_rule(monkeypatch):
    """With relu's backward passing every gradient through (the mask forgotten), W1 and b1 go wrong."""
    monkeypatch.setattr(ops.ReLU, "backward", lambda self, grad, *saved: (grad,))
    result = compare_mlp()
    assert not result.passed
    wrong = {r.name for r in result.rows if r.verdict == "WRONG"}
    assert wrong == {"W1", "b1"}  # the layer above the relu is still right
    assert "FAIL" in result.conclusion() and "W1" in result.conclusion()
    assert result.logits_rel < 1e-15  # p − y at the logits is untouched by a bug further down


def test_the_kink_check_fails_when_a_hidden_unit_sits_on_zero(monkeypatch):
    from tinygrad_softmax.lecture.lessons import hidden_layer

    net = build_two_layer_net()
    net.Z1.data[0, 0] = 1e-9
    checks = {c.name: c for c in hidden_layer._checks(net, 1e-12, 1e-6)}
    assert not checks["no hidden unit sits on the ReLU kink"].passed


# ---------------------------------------------------------------- the command line


def test_cli_train_mlp_on_the_spiral(tmp_path, capsys):
    assert (
        main(["train", "--dataset", "spiral", "--model", "mlp", "--epochs", "300", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("spiral: two-layer net, 100 hidden ReLUs, gradient descent (lr 0.3), 300 steps")
    assert "epoch 300/300 [####################]" in out
    assert (tmp_path / "spiral-mlp-boundary.png").is_file() and (tmp_path / "spiral-mlp-loss.png").is_file()
    assert main(["train", "--dataset", "moons", "--hidden", "0", "--model", "mlp"]) == 2


def test_cli_boundaries_writes_the_side_by_side_picture(tmp_path, capsys):
    assert main(["boundaries", "--dataset", "moons", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "moons: linear softmax classifier train" in out and "two-layer net" in out
    with Image.open(tmp_path / "moons-boundaries.png") as image:
        assert image.size == (1920, 1080)
    (tmp_path / "a-file").write_text("x")
    assert main(["boundaries", "--out", str(tmp_path / "a-file")]) == 2
    assert "a file, not a folder" in capsys.readouterr().err


def test_cli_compare_model_mlp(tmp_path, capsys):
    md, js = tmp_path / "mlp.md", tmp_path / "mlp.json"
    assert main(["compare", "--model", "mlp", "--markdown", str(md), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "There is no closed form for the hidden layer" in out and "derivation's p − y." in out
    assert "Z2.grad (autograd)" in out and "(P − Y)/N (closed form)" in out
    assert json.loads(js.read_text(encoding="utf-8"))["passed"]
    assert main(["compare", "--model", "mlp", "--inject-bug", "missing-one-hot"]) == 2
    assert "linear softmax classifier only" in capsys.readouterr().err


def test_cli_graph_explain_and_animate_draw_the_two_layer_net(tmp_path, capsys):
    out = tmp_path / "mlp.png"
    assert main(["graph", "--model", "mlp", "--compact", "--collapse", "--out", str(out)]) == 0
    assert "two-layer net" in capsys.readouterr().out
    width, height = viz.png_size(out)
    assert width <= 1920 and 1.5 <= width / height <= 2.1  # fits a 16:9 slide
    dot = viz.to_dot(build_two_layer_net().loss, compact=True).source
    for name in ("W1", "b1", "Z1", "H1", "W2", "b2", "Z2"):
        assert f"<b>{name}</b>" in dot or f">{name}<" in dot, name
    assert main(["explain", "--model", "mlp"]) == 0
    assert "max |∂loss/∂Z2 − (P − Y)/N|" in capsys.readouterr().out
    assert main(["animate", "--model", "mlp", "--out", str(tmp_path / "frames"), "--dpi", "30"]) == 0
    frames = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(frames) == 17  # one per tensor that backward visits


def test_the_demo_section_writes_its_files_and_fills_its_part_of_the_report(tmp_path):
    import re
    from importlib import resources

    from tinygrad_softmax.lecture.lessons.hidden_layer import demo_section

    lines = []
    section = demo_section(tmp_path, log=lines.append)
    assert section.passed
    names = sorted(p.name for p in section.files)
    assert names == sorted(
        [
            "spiral-boundaries.png",
            "moons-boundaries.png",
            "graph-mlp.png",
            "hidden-layer.json",
            "compare-mlp.md",
            "compare-mlp.json",
        ]
    )
    summaries = json.loads((tmp_path / "hidden-layer.json").read_text(encoding="utf-8"))
    assert summaries["spiral-linear"]["final_train_accuracy"] < 0.6
    assert (
        summaries["spiral-mlp"]["final_train_accuracy"] >= 0.97 and summaries["spiral-mlp"]["hidden"] == 100
    )
    template = resources.files("tinygrad_softmax.lecture").joinpath("report.md").read_text("utf-8")
    section_text = template.split("## 7. One hidden layer further")[1].split("\n## ")[0]  # up to the next
    wanted = set(re.findall(r"\$\{(\w+)\}", section_text))
    values = section.values(tmp_path)
    assert wanted == set(values)  # every placeholder of section 7 filled, nothing unused
    assert "![spiral: linear vs two-layer net](spiral-boundaries.png)" in values["hidden_spiral_picture"]
    assert any(line.startswith("spiral: linear softmax classifier train ") for line in lines)


def test_the_demo_section_without_matplotlib_or_dot_still_trains_and_checks(tmp_path, monkeypatch):
    from tinygrad_softmax.lecture import extras
    from tinygrad_softmax.lecture.lessons.hidden_layer import demo_section

    monkeypatch.setattr(extras, "have", lambda part: False)
    section = demo_section(tmp_path, log=lambda line: None)
    assert section.passed  # the demo says once what is missing, from its own pictures
    assert sorted(p.name for p in section.files) == [
        "compare-mlp.json",
        "compare-mlp.md",
        "hidden-layer.json",
    ]
    assert "was not drawn" in section.values(tmp_path)["hidden_spiral_picture"]
    assert section.runs.runs[("spiral", "mlp")].train_accuracy[-1] >= 0.97
