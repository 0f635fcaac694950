"""The unit of work itself (app/unit_of_work.py), on a real SQLAlchemy session over in-memory SQLite.

What is checked: a normal end commits; an exception rolls back; a ``Problem`` rolls back unless
it keeps its changes; ``after_commit`` callbacks run only after a commit (and a failing one is
logged without undoing it); ``after_rollback`` runs only after a rollback; units never nest.
"""

import logging

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select
from sqlalchemy.orm import Session

from app.problems import Problem
from app.unit_of_work import NoUnitOfWork, UnitOfWork, bound, current_unit_of_work, in_unit_of_work, unit_of_work

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String, nullable=False))


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'uow.sqlite'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine) -> list[str]:
    """What another connection sees: only committed rows."""
    with engine.connect() as connection:
        return list(connection.execute(select(notes.c.text).order_by(notes.c.id)).scalars())


def write(uow: UnitOfWork, text: str) -> None:
    uow.session.execute(insert(notes).values(text=text))


def test_a_normal_end_commits_then_runs_the_after_commit_callbacks(engine):
    seen = []
    with Session(engine) as session, unit_of_work(session) as uow:
        write(uow, "kept")
        uow.after_commit(lambda: seen.append(("callback", stored(engine))))
        assert stored(engine) == [], "nothing is visible before the commit"
    assert stored(engine) == ["kept"]
    assert seen == [("callback", ["kept"])], "the callback ran after the commit, and saw it"


def test_an_exception_rolls_back_and_skips_after_commit(engine):
    seen = []
    with Session(engine) as session, pytest.raises(RuntimeError), unit_of_work(session) as uow:
        write(uow, "lost")
        uow.after_commit(lambda: seen.append("after_commit"))
        uow.after_rollback(lambda: seen.append("after_rollback"))
        raise RuntimeError("boom")
    assert stored(engine) == []
    assert seen == ["after_rollback"]


def test_a_problem_rolls_back(engine):
    with Session(engine) as session, pytest.raises(Problem), unit_of_work(session) as uow:
        write(uow, "lost")
        raise Problem("conflict", "no")
    assert stored(engine) == []


def test_a_problem_that_keeps_its_changes_commits_them_and_still_answers(engine):
    seen = []
    with Session(engine) as session, pytest.raises(Problem) as raised, unit_of_work(session) as uow:
        write(uow, "evidence")
        uow.after_commit(lambda: seen.append("after_commit"))
        raise Problem("invalid-transition", "denied", keep_changes=True)
    assert raised.value.status == 409
    assert stored(engine) == ["evidence"]
    assert seen == ["after_commit"]


def test_a_failing_callback_is_logged_and_never_undoes_the_commit(engine, caplog):
    seen = []
    caplog.set_level(logging.ERROR, logger="app.unit_of_work")
    with Session(engine) as session, unit_of_work(session) as uow:
        write(uow, "kept")
        uow.after_commit(lambda: 1 / 0)
        uow.after_commit(lambda: seen.append("second"))
    assert stored(engine) == ["kept"]
    assert seen == ["second"], "the callbacks after a failing one still run"
    assert any(r.message == "unit-of-work callback failed" for r in caplog.records)


def test_a_failed_commit_is_a_rollback(engine):
    """The database refuses the commit (here: a constraint checked at flush): nothing is kept."""
    seen = []
    with Session(engine) as session, pytest.raises(Exception, match="NOT NULL"), unit_of_work(session) as uow:
        write(uow, "first")
        uow.session.execute(insert(notes).values(text=None))
        uow.after_commit(lambda: seen.append("after_commit"))
    assert stored(engine) == []
    assert seen == []


def test_checkpoint_commits_so_far_and_goes_on(engine):
    seen = []
    with Session(engine) as session, pytest.raises(RuntimeError), unit_of_work(session) as uow:
        write(uow, "batch 1")
        uow.after_commit(lambda: seen.append("batch 1 published"))
        uow.checkpoint()
        assert seen == ["batch 1 published"]
        write(uow, "batch 2")
        raise RuntimeError("the second batch fails")
    assert stored(engine) == ["batch 1"]


def test_units_of_work_never_nest_and_helpers_find_the_current_one(engine):
    assert not in_unit_of_work()
    with pytest.raises(NoUnitOfWork):
        current_unit_of_work()
    with Session(engine) as session, unit_of_work(session) as uow:
        assert current_unit_of_work() is uow
        with pytest.raises(RuntimeError, match="already open"), unit_of_work(session):
            pass
    assert not in_unit_of_work()


def test_callbacks_run_outside_the_finished_unit_so_they_may_open_their_own(engine):
    with Session(engine) as session, unit_of_work(session) as uow:
        write(uow, "first")

        def follow_up() -> None:
            with unit_of_work(session) as second:
                write(second, "follow-up")

        uow.after_commit(follow_up)
    assert stored(engine) == ["first", "follow-up"]


def test_bound_makes_a_unit_current_without_owning_its_transaction(engine):
    """The job runner's use: it commits itself, then reports the outcome to the unit."""
    seen = []
    with Session(engine) as session:
        uow = UnitOfWork(session)
        with bound(uow):
            write(current_unit_of_work(), "job work")
            current_unit_of_work().after_commit(lambda: seen.append("published"))
        assert stored(engine) == [], "bound never commits"
        session.commit()
        uow.committed()
    assert stored(engine) == ["job work"]
    assert seen == ["published"]
