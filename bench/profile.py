"""Optional CPU profiles of the measured phases: ``python -m bench --profile DIR``.

While a scenario measures its figure, ``py-spy record`` (not a requirement of the project: install
it with ``.venv/bin/pip install py-spy``) samples the API's and the worker's process groups (every
gunicorn worker, every Celery pool process) 100 times a second, without pausing them
(``--nonblocking``), keeping only the threads that hold the GIL (``--gil``): where Python runs.
A thread waiting on PostgreSQL or Redis, or hashing in argon2's C code, releases the GIL and is
not counted. Read the shares; the sample counts overstate CPU-seconds (about 1.5x measured here).
The ``cpu_cores_used`` notes of the table say how much CPU each process group really took. For
each group it writes to ``DIR``:

- ``<scenario>-<group>.txt``: the raw collapsed stacks (``flamegraph.pl`` or speedscope read them);
- ``<scenario>-<group>.summary.txt``: the functions with the most samples, by self time and
  inclusive time, and the application's own functions (``app/``, ``workers/``) by inclusive time.

py-spy needs ptrace rights over the processes (root, or ``kernel.yama.ptrace_scope`` 0). It takes
CPU itself, on the same cores: a profiled run's figures are lower than an unprofiled one's; use
it to see *where* the time goes, and the normal run for the figures.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.stack import BIN, BenchError, BenchStack, say

GROUPS = ("api", "worker", "peer-api", "peer-worker")  # the peer app's, during the ``peer`` scenario
RATE = 100
TOP = 30


def py_spy() -> str:
    found = shutil.which("py-spy") or (str(BIN / "py-spy") if (BIN / "py-spy").exists() else None)
    if found is None:
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return found


@contextlib.contextmanager
def recording(stack: BenchStack, label: str, out_dir: Path | None) -> Iterator[None]:
    """Record the API's and worker's groups while the block runs (a no-op when ``out_dir`` is None)."""
    if out_dir is None:
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    spies: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    for name, pid in stack.process_groups().items():
        if name not in GROUPS:
            continue
        raw = out_dir / f"{label}-{name}.txt"
        argv = [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--nolineno"]
        argv += ["--gil", "--nonblocking", "--rate", str(RATE), "--output", str(raw)]
        log = open(out_dir / f"{label}-{name}.py-spy.log", "wb")  # noqa: SIM115 (closed below)
        spies.append((name, raw, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)))
        log.close()
    try:
        yield
    finally:
        for name, raw, spy in spies:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
            if raw.exists():
                summary = out_dir / f"{label}-{name}.summary.txt"
                summary.write_text(summarize(raw, title=f"{label}: {name}"))
                say(f"profile of {name} during {label}: {summary}")
            else:
                say(f"py-spy wrote nothing for {name} (see {out_dir / f'{label}-{name}.py-spy.log'})")


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
    return frames, int(count)


def summarize(raw: Path, *, title: str, top: int = TOP) -> str:
    """Self and inclusive sample counts per function of a raw py-spy file, as text."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            frames, count = _frames(line)
        except ValueError:
            continue
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"{title}: no samples\n"

    def block(heading: str, counter: Counter[str], keep: object = None) -> list[str]:
        rows = [(f, n) for f, n in counter.most_common() if keep is None or keep(f)][:top]  # type: ignore[operator]
        return [heading, *(f"  {100 * n / total:5.1f}%  {n:7d}  {f}" for f, n in rows), ""]

    def ours(frame: str) -> bool:
        return "(app/" in frame or "(workers/" in frame

    lines = [f"{title}: {total} samples holding the GIL at {RATE} Hz", ""]
    lines += block("self time (the function itself is on CPU):", own)
    lines += block("inclusive time (the function or anything it calls):", inclusive)
    lines += block("the application's own functions, inclusive:", inclusive, ours)
    return "\n".join(lines)
