"""A run directory written before schema 2 (tests/fixtures/schema1-digits-mlp, made by
``uqbench run image/deterministic --dataset=digits --epochs=1 --model=mlp`` at commit 1bb7cd7)
stays readable: ``uqbench eval`` rebuilds it and writes a schema-2 run with the new keys."""

from __future__ import annotations

import json
from pathlib import Path

from uqbench import cli
from uqbench.training.rundir import SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schema1-digits-mlp"
NEW_KEYS = {
    "test/mce",
    "test/augrc",
    "ood/uniform_noise/tnr_at_95_tpr",
    "ood/uniform_noise/entropy/tnr_at_95_tpr",
}


def test_uqbench_eval_reads_a_schema1_run_and_writes_schema2(tmp_path):
    old = json.loads((FIXTURE / "summary.json").read_text())
    assert old["schema"] == 1 and not NEW_KEYS & set(old["metrics"])
    out = tmp_path / "again"
    assert cli.main(["eval", str(FIXTURE), "--output_dir", str(out), "--device=cpu"]) == 0
    new = json.loads((out / "summary.json").read_text())
    assert SCHEMA_VERSION == 2 and new["schema"] == 2
    assert NEW_KEYS <= set(new["metrics"])
    assert new["evaluated_from"] == str(FIXTURE)
    # the same weights on the same test set: the schema-1 numbers are reproduced
    for key in ("test/accuracy", "test/nll", "test/ece", "test/aurc", "ood/uniform_noise/auroc"):
        assert abs(new["metrics"][key] - old["metrics"][key]) < 1e-5, key
    assert 0 <= new["metrics"]["ood/uniform_noise/tnr_at_95_tpr"] <= 1
