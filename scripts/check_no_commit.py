"""The unit-of-work rule (app/unit_of_work.py): nothing under app/ or workers/ commits or rolls back,
except the unit of work itself and the job runner.

Run by ``make lint`` and by tests/unit/test_unit_of_work_rule.py. It reads the code (AST), so it
catches ``db.session.commit()``, ``session.rollback()``, ``connection.commit()`` and the like
whatever the receiver is called; comments and strings do not count.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The packages the rule covers.
SCANNED = ("app", "workers")
#: The only modules that may end a transaction.
ALLOWED = frozenset({"app/unit_of_work.py", "app/jobs/runner.py"})
FORBIDDEN = frozenset({"commit", "rollback"})


def violations_in(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, call) of every ``<anything>.commit()`` / ``.rollback()`` call in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN:
            found.append((node.lineno, f"{ast.unparse(node.func)}()"))
    return sorted(found)


def violations(root: Path = ROOT) -> list[str]:
    """``path:line: call`` for every forbidden call outside the allowed modules."""
    found = []
    for package in SCANNED:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative in ALLOWED:
                continue
            for line, call in violations_in(path.read_text(encoding="utf-8"), relative):
                found.append(f"{relative}:{line}: {call}")
    return found


def main() -> int:
    found = violations()
    for line in found:
        print(f"{line}  (only app/unit_of_work.py and app/jobs/runner.py end transactions)", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
