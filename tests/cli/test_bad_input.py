"""A catalogue of bad inputs a new user gives the command line: each one is a clear one-line error,
the documented exit code, and nothing written where the result would go."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from uqbench.cli import main


def write_png(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


pytestmark = pytest.mark.usefixtures("one_thread")


def one_class_folder(root):
    """An image-folder tree with a single class, ``cat``."""
    for part, count in (("train", 6), ("test", 2)):
        for i in range(count):
            write_png(root / part / "cat" / f"{i}.png", 40 * i)
    return root


def no_test_images_folder(root):
    one_class_folder(root)
    for i in range(6):
        write_png(root / "train" / "dog" / f"{i}.png", 30 * i)
    return root


CASES = {
    "one-class image folder, baseline": (
        lambda d: ["run", "image/deterministic", f"--dataset={one_class_folder(d / 'one')}"],
        r"needs at least two classes, found 1 \(cat\)",
        2,
    ),
    "one-class image folder, search": (
        lambda d: ["search", f"--dataset={one_class_folder(d / 'one')}", "--trials=2"],
        r"needs at least two classes, found 1 \(cat\)",
        2,
    ),
    "a class without test images": (
        lambda d: ["run", "image/deterministic", f"--dataset={no_test_images_folder(d / 'two')}"],
        r"class\(es\) dog have no test images",
        2,
    ),
    "diverging learning rate, uci/dropout": (
        lambda d: [
            "run",
            "uci/dropout",
            "--dataset=diabetes",
            "--split=0",
            "--learning_rate=1e6",
            "--dropout_rates=0.05",
            "--tau_values=1",
        ],
        r"training failed: the training loss of split 0 rate 0\.05 tau 1 rose to .* in epoch 1",
        1,
    ),
    "diverging learning rate, uci/ensemble": (
        lambda d: ["run", "uci/ensemble", "--dataset=diabetes", "--split=0", "--learning_rate=1e6"],
        r"training failed: .*diverged.*nothing was written",
        1,
    ),
    "holding out all but one class": (
        lambda d: [
            "run",
            "image/deterministic",
            "--dataset=digits",
            "--holdout_classes=0,1,2,3,4,5,6,7,8",
        ],
        r"leaves 1 to train on; a classifier needs at least two",
        2,
    ),
    "unknown OOD set": (
        lambda d: ["run", "image/deterministic", "--dataset=digits", "--ood=noise"],
        r"unknown OOD set 'noise'\. Did you mean uniform_noise or gaussian_noise\?",
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_one_line_error_with_its_exit_code_and_nothing_written(
    case, tmp_path, capsys
):
    build, message, code = CASES[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    out = tmp_path / "out"
    argv = [*build(inputs), f"--output_dir={out}", "--quiet"]
    if argv[0] == "run":
        argv.append("--epochs=2")
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err and re.search(message, err[-1]), err
    assert err[-1].startswith("uqbench: ")
    assert not out.exists() or not any(out.iterdir())


def test_an_argument_without_dashes_is_refused_not_ignored(tmp_path, capsys, monkeypatch):
    # a mistyped output_dir=... used to be ignored: the run wrote into runs/ and exited 0
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = ["run", "uci/deterministic", "--dataset=diabetes", f"output_dir={out}", "--epochs=1"]
    assert main(argv) == 2
    assert "takes only --flags, got 'output_dir=" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "runs").exists()
