"""``make run``'s stack, started the way the Makefile starts it, then the README's curl walk-through.

Fresh data directory and ports of its own: embedded PostgreSQL and Redis are initialised from
nothing, development keys generated, migrations and demo seed run, and gunicorn, the Celery worker
and beat come up under honcho. The README block is executed verbatim with bash.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.stack import BIN, ROOT

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name}:start -->\s*```bash\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert block, f"README.md lost its {name} block"
    return block.group(1)


def wait_http(url: str, timeout: float, process: subprocess.Popen, log: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-4000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered:\n{log.read_text()[-4000:]}")


def test_make_run_brings_the_stack_up_and_the_readme_walkthrough_works(tmp_path, oathtool):
    api_port, pg_port, redis_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "APP_ENV"}}
    for key in ("SECRET_KEY", "ENCRYPTION_KEYS", "BLIND_INDEX_KEY"):
        env.pop(key, None)
    env.update(PORT=str(api_port), EMBEDDED_PG_PORT=str(pg_port), EMBEDDED_REDIS_PORT=str(redis_port))
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "python"), "scripts/stack.py", "--data-dir", str(tmp_path / "data"), "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{api_port}"
    try:
        wait_http(f"{base}/readyz", 120, process, log)
        output = log.read_text()
        assert f"API on http://127.0.0.1:{api_port}" in output
        assert "demo login: user@demo.estacionate.cl / demo-user-password" in output
        assert (tmp_path / "data" / "dev-keys.env").exists()

        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_block("walkthrough")],
            env={**env, "BASE": base},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert walk.returncode == 0, walk.stderr
        assert walk.stdout.strip().splitlines()[-1] == "succeeded"
        job = json.loads(walk.stderr.strip().splitlines()[-1])
        assert job["result"] == {"pong": True}

        # The API's and the worker's lines for that job carry the same trace id.
        deadline = time.monotonic() + 10
        while True:
            lines = [json.loads(m) for m in re.findall(r"\| (\{.*\})$", log.read_text(), re.M) if m]
            worker = [x for x in lines if x.get("job_id") == job["id"] and x.get("service") == "worker"]
            if any(x["message"] == "job finished" for x in worker):
                break
            assert time.monotonic() < deadline, "the worker never logged the job"
            time.sleep(0.2)
        trace_ids = {x["trace_id"] for x in worker}
        api = [x for x in lines if x.get("service") == "api" and x.get("job_id") == job["id"]]
        assert len(trace_ids) == 1 and api and {x["trace_id"] for x in api} == trace_ids

        # The README's MFA enrollment of the demo admin works as written.
        json_helper = readme_block("walkthrough").split("\n# 1.")[0]
        enroll = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", json_helper + "\n" + readme_block("mfa")],
            env={**env, "BASE": base},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert enroll.returncode == 0, enroll.stderr
        confirmed = json.loads(enroll.stdout)
        assert len(confirmed["recovery_codes"]) == 10 and confirmed["access_token"]
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # what Ctrl-C does: children first, then the servers
        process.wait(timeout=90)
    assert process.returncode == 0, log.read_text()[-3000:]
    output = log.read_text()
    assert "PostgreSQL stopped" in output and "Redis stopped" in output
    for port in (api_port, pg_port, redis_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after shutdown"
