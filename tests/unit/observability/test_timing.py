"""Specification of the one request clock: the access log and the latency histogram agree."""

from __future__ import annotations

import itertools
import logging

import pytest
from flask import Flask

from app.api import edge
from app.observability import metrics, timing
from app.problems import Problem
from config.settings import Settings
from tests.unit.config.test_settings import production_env


@pytest.fixture
def app(monkeypatch) -> Flask:
    # A clock that moves one second per reading: two separate measurements could never agree.
    ticks = itertools.count(100)
    monkeypatch.setattr(timing, "_clock", lambda: float(next(ticks)))
    flask_app = Flask(__name__)
    edge.init_app(flask_app)
    metrics.init_app(flask_app, Settings.from_env(production_env(APP_ENV="test")), job_snapshot=lambda: ({}, {}))
    flask_app.add_url_rule("/timed-once", "timed_once", lambda: "ok")
    flask_app.register_error_handler(Problem, lambda problem: (problem.slug, problem.status))
    return flask_app


def histogram_sum(endpoint: str, method: str = "GET") -> float:
    return metrics.HTTP_LATENCY.labels(method, endpoint)._sum.get()


def test_the_access_log_and_the_histogram_report_one_measurement(app, caplog):
    before = histogram_sum("/timed-once")
    with caplog.at_level(logging.INFO, logger="app.access"):
        assert app.test_client().get("/timed-once").status_code == 200
    (line,) = [r for r in caplog.records if r.name == "app.access" and r.getMessage() == "request"]
    assert line.duration_ms == 1000.0  # started once, read once: exactly one tick
    assert histogram_sum("/timed-once") - before == 1.0


def test_a_request_refused_at_the_edge_is_timed_too(app, caplog):
    before = histogram_sum("unmatched", "POST")
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = app.test_client().post("/nowhere", data="x", content_type="text/plain")
    assert response.status_code == 415
    (line,) = [r for r in caplog.records if r.name == "app.access" and r.getMessage() == "request"]
    assert line.duration_ms == 1000.0
    assert histogram_sum("unmatched", "POST") - before == 1.0


def test_without_a_started_clock_there_is_no_figure(app):
    with app.test_request_context("/"):
        assert timing.elapsed_seconds() is None
        timing.start()
        first = timing.elapsed_seconds()
        assert first == 1.0
        assert timing.elapsed_seconds() == first
