"""Plug-in algorithms (``--algorithm=package.module:factory``): the worked example of
docs/search.md runs, is deterministic per seed and suggests the same after ``--resume``; bad
paths, objects and suggestions are refused with the reason, before anything trains."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from table_searches import resume_suggests_the_same, table_request

from uqbench.cli import main
from uqbench.search.algorithms import Suggestion, Trial, make_algorithm
from uqbench.search.driver import run_search
from uqbench.search.plugins import BadSuggestion, PluginError
from uqbench.search.space import Range, SearchSpace
from uqbench.search.store import TrialStore

pytestmark = pytest.mark.usefixtures("one_thread")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "search.md"
SPACE = SearchSpace(
    blocks=("a", "b", "c", "d"), max_depth=3, hyperparameters={"learning_rate": Range(1e-3, 0.1)}
)
BROKEN = '''
from uqbench.search import Suggestion

class NoSuggest:
    name = "none"
    def __init__(self, space, seed, check):
        pass

def raising(space, seed, check):
    raise RuntimeError("no GPU here")

class WrongBlock:
    name = "wrong"
    def __init__(self, space, seed, check):
        pass
    def suggest(self, history, trial_number):
        return Suggestion(("conv_nonexistent",), {}, None, "wrong")

class LateBlunder:
    """Good for two trials, then names a parent that never ran."""
    name = "late"
    def __init__(self, space, seed, check):
        self.space = space
    def suggest(self, history, trial_number):
        parent = 99 if trial_number > 2 else None
        return Suggestion((self.space.blocks[trial_number % 2],), {}, parent, "late")

not_callable = 3
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch) -> Path:
    """``doc_search`` (the docs' example, taken from docs/search.md) and ``broken_plugins``,
    importable here and in worker processes."""
    blocks = re.findall(r"```python\n(# my_search\.py.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1, "docs/search.md has one worked example of a plug-in"
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "doc_search.py").write_text(blocks[0])
    (folder / "broken_plugins.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(folder))
    src = str(Path(__file__).resolve().parents[2] / "src")
    monkeypatch.setenv("PYTHONPATH", f"{src}:{folder}")
    for name in ("doc_search", "broken_plugins"):
        sys.modules.pop(name, None)
    return folder


def done(id: int, architecture: tuple[str, ...], objective: float, status="done") -> Trial:
    return Trial(id, None, architecture, {"learning_rate": 0.01}, status, objective)


def test_the_docs_example_is_deterministic_per_seed_and_climbs_from_the_best(plugins):
    history = [done(1, ("a", "b"), 0.5), done(2, ("c",), 0.2), done(3, ("d", "d"), None, "running")]
    first = make_algorithm("doc_search:HillClimb", SPACE, 7, lambda _: True)
    again = make_algorithm("doc_search:HillClimb", SPACE, 7, lambda _: True)
    made = [first.suggest(history, n) for n in range(4, 24)]
    assert made == [again.suggest(history, n) for n in range(4, 24)]
    other = make_algorithm("doc_search:HillClimb", SPACE, 8, lambda _: True)
    assert made != [other.suggest(history, n) for n in range(4, 24)]
    for suggestion in made:  # one block of the best (trial 2) changed, never a trial seen
        assert suggestion.parent == 2 and len(suggestion.architecture) == 1
        assert suggestion.architecture not in {("a", "b"), ("c",), ("d", "d")}
        assert suggestion.hparams == {"learning_rate": 0.01}
    assert first.name == "hill_climb"


def test_a_plugin_search_runs_and_resumes_with_the_same_suggestions(tmp_path, plugins):
    made = resume_suggests_the_same(tmp_path, "doc_search:HillClimb", 5)
    assert [how for *_, how in made] == ["done"] * 5
    rows = TrialStore(tmp_path / "straight" / "search" / "search.db").trials()
    assert rows[0].how == "hill_climb" and rows[0].parent is None
    assert all(t.parent is not None for t in rows[1:])  # climbing from a completed trial


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        ("no_such_module:Thing", "cannot import 'no_such_module'"),
        ("broken_plugins:Missing", "module 'broken_plugins' has no 'Missing'"),
        ("broken_plugins:not_callable", "is not callable"),
        ("broken_plugins:NoSuggest", "has no method suggest(history, trial_number)"),
        ("broken_plugins:raising", "raised RuntimeError: no GPU here"),
        ("broken_plugins:WrongBlock", "'conv_nonexistent'] are not in the space's blocks"),
        (":Thing", "is 'package.module:factory'"),
    ],
)
def test_bad_plugins_are_refused_before_anything_is_written(
    tmp_path, capsys, plugins, algorithm, message
):
    out = tmp_path / "search"
    assert (
        main(["search", "--dataset=iris", f"--algorithm={algorithm}", f"--output_dir={out}"]) == 2
    )
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_suggestion_during_the_search_stops_it_with_the_reason(tmp_path, plugins):
    request = table_request(tmp_path, "broken_plugins:LateBlunder", 4)
    with pytest.raises(BadSuggestion, match="parent 99 is not a completed trial"):
        run_search(request)
    rows = TrialStore(tmp_path / "search" / "search.db").trials()
    assert [t.status for t in rows] == ["done", "done"]  # the finished trials are kept


def test_optuna_missing_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a)
    )
    with pytest.raises(PluginError, match=r"pip install 'uqbench\[optuna\]'"):
        make_algorithm("optuna", SPACE, 0, lambda _: True)
    out = tmp_path / "search"
    assert main(["search", "--dataset=iris", "--algorithm=optuna", f"--output_dir={out}"]) == 2
    assert "--algorithm=optuna needs optuna, which is not installed" in capsys.readouterr().err
    assert not out.exists()


def test_suggestions_are_checked_against_the_space():
    class Deep:
        name = "deep"

        def suggest(self, history, trial_number):
            return Suggestion(("a",) * 9, {"momentum": 0.9}, None, "deep")

    from uqbench.search.plugins import CheckedAlgorithm

    with pytest.raises(BadSuggestion, match=r"depth 9 is outside \[1, 3\]"):
        CheckedAlgorithm(Deep(), SPACE, "x:Deep").suggest([], 1)
