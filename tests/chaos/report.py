"""The table on stdout (one row per scenario, like bench's) and the JSON document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import _git
from tests.chaos.verdict import Row

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = ROOT / ".data" / "chaos" / "latest.json"
DEFAULT_CI_RESULTS = ROOT / ".data" / "chaos" / "latest-ci.json"


def _statuses(counts: dict[str, int]) -> str:
    return " ".join(f"{status}x{n}" for status, n in counts.items()) or "-"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    header = [
        "scenario",
        "fault s",
        "answers during the fault",
        "500s",
        "accepted",
        "finished",
        "lost",
        "ran twice",
        "recover s",
        "deadline s",
        "result",
    ]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r.scenario,
                _seconds(r.fault_s),
                _statuses(r.during_fault),
                str(r.http_500),
                str(r.accepted),
                str(r.finished),
                str(r.lost),
                str(r.ran_twice),
                _seconds(r.recovery_s),
                _seconds(r.deadline_s),
                "PASS" if r.passed else "FAIL",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for r in rows:
        pad = " " * len(r.scenario)
        d = r.details
        notes.append(f"{r.scenario}: {r.summary}")
        notes.append(
            f"{pad}  bookings {d.get('accepted_bookings', 0)} ({d.get('contended_bookings', 0)} contended; "
            f"{d.get('bookings_succeeded', 0)} won, {d.get('bookings_failed', 0)} refused), "
            f"pings {d.get('accepted_pings', 0)}; re-runs (attempts > 1) {r.reruns}; re-logins {d.get('relogins', 0)}"
        )
        notes.append(
            f"{pad}  all answers: {_statuses(r.answers)}; unanswered {r.unanswered}; hung {r.hung}; "
            f"slowest {d.get('slowest_answer_s', '-')} s beyond its wait; API back after {d.get('api_back_after_s')} s"
        )
        if r.error:
            notes.append(f"{pad}  ERROR {r.error}")
        if not r.passed:
            notes.append(f"{pad}  FAILED: {', '.join(r.failed_checks()) or 'no checks ran'}")
            for key in ("lost_jobs", "lost_by_status", "abandoned", "unexpected", "wrong_blocks", "dead_processes"):
                if d.get(key):
                    notes.append(f"{pad}    {key}: {d[key]}")
            if r.ran_twice:
                notes.append(f"{pad}    ran_twice: {d.get('ran_twice_parts')}")
        fault = d.get("fault") or {}
        if fault:
            notes.append(f"{pad}  fault: {json.dumps(fault, default=str)[:400]}")
    return "\n".join([*out, "", *notes])


def document(rows: list[Row], *, options: dict[str, Any], stack: dict[str, Any], error: str | None) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "options": options,
        "stack": stack,
        "scenarios": [r.as_dict() for r in rows],
        "all_passed": error is None and bool(rows) and all(r.passed for r in rows),
        "error": error,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(path)
