"""The environment the stack's processes run in: where things are, keys, ``PATH``, migrations."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.net import StackError, say

ROOT = Path(__file__).resolve().parent.parent
#: The virtualenv's bin directory (flask, celery, gunicorn, honcho, pytest).
BIN = Path(sys.executable).parent
KEY_NAMES = ("SECRET_KEY", "ENCRYPTION_KEYS", "BLIND_INDEX_KEY")


def generate_keys(*, production: bool = False) -> dict[str, str]:
    """Fresh keys. Development ones are marked ``dev``, so production refuses them
    (config.settings.DEV_MARKER); ``production=True`` gives unmarked throwaway keys (the bench
    measures the production profile, which accepts only those)."""
    if production:
        return {
            "SECRET_KEY": "bench-" + secrets.token_urlsafe(48),
            "ENCRYPTION_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    return {
        "SECRET_KEY": "dev-" + secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BLIND_INDEX_KEY": "dev:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def development_keys(data_dir: Path) -> dict[str, str]:
    """Generated once and kept in ``<data_dir>/dev-keys.env`` (mode 0600) so encrypted rows stay readable."""
    path = data_dir / "dev-keys.env"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = generate_keys()
        path.write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
        path.chmod(0o600)
        say(f"generated development keys in {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    keys = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            keys[name.strip()] = value.strip()
    return keys


def with_tools(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the virtualenv's bin directory first on ``PATH`` (honcho and the Procfile find
    flask, celery and gunicorn there)."""
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}


def flask(env: Mapping[str, str], *args: str, capture: bool = False) -> str:
    """``flask --app app <args>`` in ``env``; with ``capture`` its stdout is returned and its output
    shown only in the error (StackError) when it fails, else it writes to ours."""
    return run_tool([str(BIN / "flask"), "--app", "app", *args], env, f"flask {' '.join(args)}", capture=capture)


def migrate(env: Mapping[str, str], *, capture: bool = False) -> None:
    """The real ``flask db upgrade`` (every Alembic revision) against ``env``'s ``DATABASE_URL``."""
    flask(env, "db", "upgrade", capture=capture)


def run_tool(argv: Sequence[str], env: Mapping[str, str], what: str, *, capture: bool = True) -> str:
    """Run a command line in the repository with ``env``; its stdout (when captured), or StackError."""
    result = subprocess.run(
        list(argv), env=dict(env), cwd=ROOT, capture_output=capture, text=True, timeout=None if not capture else 300
    )
    if result.returncode != 0:
        output = f":\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}" if capture else ""
        raise StackError(f"{what} failed ({result.returncode}){output}")
    return result.stdout or ""
