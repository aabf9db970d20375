"""docs/ARCHITECTURE.md names every module, and the layers import only what they may."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
PACKAGES = ("core", "api", "runners", "evaluators", "cli", "leaderboard")
OURS = set(PACKAGES)

# Imports from evaluators/ into the service (core/, runners/) that exist today and should move into EvalSpec (issue 15).
# The list may shrink; a new entry means a new dependency of the evaluators on the service.
EVALUATOR_DEBT: set[tuple[str, str]] = set()
# The pure checks the worker and the child must agree on: standard library only, no settings, no database.
EVALUATORS_MAY_USE = {"core.errors", "core.checkpoint_policy", "core.dataset_mirror"}


@pytest.mark.parametrize("module", sorted(EVALUATORS_MAY_USE))
def test_what_evaluators_may_use_of_core_is_pure(module):
    ours = {n for n in imports(Path(module.replace(".", "/") + ".py")) if n.split(".")[0] in OURS}
    assert ours <= {"core.errors"}, f"{module} imports {ours}: evaluators may not depend on it"


def modules() -> list[Path]:
    return sorted(p.relative_to(ROOT) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                  if p.name != "__init__.py")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_architecture_page_names_every_module():
    named = set(re.findall(r"`((?:%s)/[\w/]+\.py)`" % "|".join(PACKAGES), DOC))
    missing = [str(p) for p in modules() if str(p) not in named]
    assert not missing, f"docs/ARCHITECTURE.md does not name: {missing}"
    gone = sorted(n for n in named if not (ROOT / n).is_file())
    assert not gone, f"docs/ARCHITECTURE.md names modules that do not exist: {gone}"


@pytest.mark.parametrize("path", [p for p in modules() if p.parts[0] == "core"], ids=str)
def test_core_imports_nothing_of_ours_above_it(path):
    assert not {name for name in imports(path) if name.split(".")[0] in OURS - {"core"}}


@pytest.mark.parametrize("path", [p for p in modules() if p.parts[0] == "api"], ids=str)
def test_the_api_never_imports_evaluators_or_torch(path):
    names = imports(path)
    assert not {n for n in names if n.split(".")[0] in {"evaluators", "torch", "transformers", "cli", "leaderboard"}}
    assert {n for n in names if n.startswith("runners")} <= {"runners.dispatch"}


@pytest.mark.parametrize("path", [p for p in modules() if p.parts[0] == "evaluators"], ids=str)
def test_evaluators_import_their_contract_and_pure_core_checks_only(path):
    ours = {n for n in imports(path) if n.split(".")[0] in OURS}
    outside = {n for n in ours if not n.startswith("evaluators") and n not in EVALUATORS_MAY_USE}
    assert outside <= {name for file, name in EVALUATOR_DEBT if file == str(path)}, outside


@pytest.mark.parametrize("path", [p for p in modules() if p.parts[0] == "leaderboard"], ids=str)
def test_the_leaderboard_knows_the_service_only_through_http(path):
    assert not {n for n in imports(path) if n.split(".")[0] in OURS - {"leaderboard"}}


@pytest.mark.parametrize("path", [p for p in modules() if p.parts[0] == "runners"], ids=str)
def test_runners_never_import_the_api_or_the_cli(path):
    assert not {n for n in imports(path) if n.split(".")[0] in {"api", "cli", "leaderboard"}}
