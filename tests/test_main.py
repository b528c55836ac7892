"""python -m skmlp: the demo runs and beats the tutorial on its own problem."""

import subprocess
import sys

from sklearn.datasets import make_circles
from sklearn.metrics import accuracy_score

from skmlp.__main__ import main, sparkline


def test_demo_reaches_097_on_the_tutorials_two_circles(capsys, tmp_path):
    results = main(["--plot", str(tmp_path / "demo.png")])
    assert (tmp_path / "demo.png").exists()
    out = capsys.readouterr().out
    clf = results["two_circles"]["estimator"]
    X, y = make_circles(n_samples=1000, factor=0.5, noise=0.1, random_state=0)
    assert clf.hidden_layer_sizes == (4, 3) and clf.activation == "relu"
    assert accuracy_score(y, clf.predict(X)) >= 0.97  # the tutorial peaked at 0.818
    assert results["two_circles"]["cv_accuracy"] >= 0.95
    assert "Two circles" in out and "Digits" in out and "accuracy" in out
    (fit_line,) = [line for line in out.splitlines() if "fit in" in line]
    assert fit_line.count("epochs") == 1  # said once ("290 epochs ... 290 epochs")
    assert f" {clf.n_iter_} epochs" in fit_line
    digits = results["digits"]
    assert digits["skmlp"]["accuracy"] >= digits["sklearn"]["accuracy"] - 0.01


def test_module_entry_point_runs():
    done = subprocess.run(
        [sys.executable, "-m", "skmlp", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "python -m skmlp" in done.stdout


def test_sparkline_maps_high_to_tall():
    assert sparkline(range(8)) == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 1]) == "█▁"
    assert sparkline([1, 1]) == "▁▁"
    assert sparkline([]) == ""
