"""devstack's embedded servers, where they can go wrong in ways the suite's users do not show."""

import os
import shutil
import signal

from devstack.env import ROOT
from devstack.net import port_open, wait_for_port_closed
from tests.support.servers import OwnPostgres


def test_postgres_stops_after_a_parent_of_its_data_was_made_private_again():
    """As root the server runs as its own user, which must traverse every parent of its data.
    pytest makes /tmp/pytest-of-<user> private (0700) at the start of every session, so a second
    session running beside ours left ``make run``'s server impossible to stop (``pg_ctl``:
    permission denied); the stop must open the path again."""
    workdir = ROOT / ".data" / f"devstack-{os.getpid()}"
    private = workdir / "private"
    private.mkdir(parents=True)
    server = OwnPostgres(private / "pg")
    try:
        server.start()
        assert port_open(server.port)
        private.chmod(0o700)
        server.stop()
        assert not port_open(server.port), "the server is still running"
        assert not server.started_here
    finally:
        if port_open(server.port):  # never leave a server behind, even when pg_ctl cannot reach it
            pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)
            wait_for_port_closed(server.port, "PostgreSQL")
        shutil.rmtree(workdir, ignore_errors=True)
