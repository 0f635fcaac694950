"""One scenario, start to verdict, on a stack that is whole when it begins.

1. Fresh blocks for the scenario (``inventory.make_blocks``): enough for the load's rate over the
   whole scenario, a share of them contended.
2. The load starts (``load.Load``) and runs ``pre_s`` in steady state.
3. The fault (``faults.*``) lands, holds and is undone, while the load keeps going.
4. From the fault's end: a probe asks ``GET /v1/me`` (logging in again when the session is gone)
   until it answers 200, and ``/readyz`` until it answers 200; the load goes on for ``post_s``, then
   stops taking new operations and finishes those in flight.
5. The database is polled until every accepted job is terminal or past its deadline, and the
   scenario's own recovery signal (if any) is awaited within the deadline.
6. The verdict (``verdict.judge``), then whatever the fault left dead is restarted for the next one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench.stack import BenchError, say
from bench.tenant import Tenant
from tests.chaos.faults import Fault
from tests.chaos.inventory import make_blocks
from tests.chaos.load import READ_TIMEOUT_S, TERMINAL, Accounts, Client, Load, Plan
from tests.chaos.scenarios import Scenario
from tests.chaos.stack import ChaosStack
from tests.chaos.verdict import Row, job_states, judge

#: After the fault's end, how long a client keeps retrying one operation before giving it up.
PATIENCE_S = 90.0
POLL_S = 0.5
#: Seconds of load planned beyond pre + hold + post.
PLAN_MARGIN_S = 60.0


@dataclass(frozen=True)
class Sizes:
    """The load's shape; ``FULL`` for ``make chaos``, ``CI`` for the part that runs in ``make test``."""

    pre_s: float
    post_s: float
    #: Residents who book (each booking thread takes them in turn); one more pings, one more probes.
    booking_residents: int
    booking_rate: float
    booking_threads: int
    ping_threads: int
    contend_every: int = 8
    group: int = 3


FULL = Sizes(pre_s=5, post_s=5, booking_residents=12, booking_rate=6, booking_threads=6, ping_threads=2)
CI = Sizes(pre_s=2, post_s=2, booking_residents=4, booking_rate=4, booking_threads=4, ping_threads=1)


def residents(sizes: Sizes) -> int:
    """The run's tenant: the booking residents, then one per ping thread, then the probe."""
    return sizes.booking_residents + sizes.ping_threads + 1


def run_scenario(stack: ChaosStack, tenant: Tenant, accounts: Accounts, scenario: Scenario, *, ci: bool) -> Row:
    sizes = CI if ci else FULL
    probe = residents(sizes) - 1
    hold = scenario.hold.pick(ci)
    timers = stack.timers()
    row = Row(scenario.name, scenario.summary, hold_s=hold, deadline_s=round(scenario.deadline(timers), 1))
    row.details["timers"] = timers.__dict__

    # Enough blocks for the rate over the whole scenario, with room for slow restarts (a beat can
    # take 15 s to start on a busy machine); unused blocks cost nothing.
    slots = math.ceil(sizes.booking_rate * (sizes.pre_s + hold + sizes.post_s + PLAN_MARGIN_S))
    contended = math.ceil(slots / sizes.contend_every)
    blocks = make_blocks(stack, tenant.building, scenario.name, slots, contended)
    prefix = f"chaos-{stack.run_id}-{scenario.name}"
    plan = Plan(
        distinct=blocks.distinct,
        contended=blocks.contended,
        residents=sizes.booking_residents,
        rate=sizes.booking_rate,
        contend_every=sizes.contend_every,
        group=sizes.group,
        prefix=prefix,
    )
    load = Load(
        api_url=stack.api_url or "",
        accounts=accounts,
        plan=plan,
        booking_residents=list(range(sizes.booking_residents)),
        ping_residents=list(range(sizes.booking_residents, probe)),
        booking_threads=sizes.booking_threads,
        ping_threads=sizes.ping_threads,
        prefix=prefix,
    )
    _fresh_sessions(load)  # a session lost in an earlier scenario must not count in this one
    relogins_before = accounts.logins
    window_start = time.time()
    say(f"{scenario.name}: load for {sizes.pre_s:g} s, then the fault ({hold:g} s): {scenario.summary}")
    load.start()
    time.sleep(sizes.pre_s)
    fault = Fault(stack, hold)
    try:
        scenario.inject(fault)
    except Exception as exc:  # the harness could not inject or undo the fault: no verdict on the app
        row.error = f"injecting the fault failed: {type(exc).__name__}: {exc}"
        if fault.started_at is None:
            fault.begin()
        fault.end()
    fault_end = fault.ended_at or time.time()
    load.fault_ended(fault_end, PATIENCE_S)
    say(f"{scenario.name}: fault over after {fault_end - (fault.started_at or fault_end):.1f} s; recovering")

    api_back_at = _probe_api(load, probe, until=fault_end + PATIENCE_S)
    time.sleep(max(0.0, fault_end + sizes.post_s - time.time()))
    if not load.stop(timeout=PATIENCE_S + READ_TIMEOUT_S + 15):
        row.error = row.error or "client threads did not stop"
    probe_at = _await_terminal(stack, load, fault, fault_end, row.deadline_s)
    row.details["plan_exhausted"] = plan.exhausted  # the blocks ran out before the load was told to stop
    dead = stack.dead()
    user_ids = [p["user_id"] for p in tenant.residents]
    judge(
        stack,
        row,
        fault,
        load,
        window_start=window_start,
        api_back_at=api_back_at,
        probe_at=probe_at,
        user_ids=user_ids,
        dead=dead,
        relogins_before=relogins_before,
    )
    healed = stack.heal()
    if healed:
        say(f"{scenario.name}: restarted what the fault left dead: {', '.join(healed)}")
        row.details["restarted_after"] = healed
    stack.wait_ready()
    return row


def _fresh_sessions(load: Load) -> None:
    """Every resident starts the scenario logged in (``GET /v1/me``; a 401 logs in again)."""
    client = Client(load)
    until = time.time() + PATIENCE_S
    for index in range(len(load.accounts.people)):
        if client.call("GET", "/v1/me", index, accept=(200,), until=until) is None:
            raise BenchError(f"resident {index} could not be logged in before the scenario")
    load.recorder.answers.clear()


def _probe_api(load: Load, probe: int, until: float) -> float | None:
    """The first moment after the fault that ``/readyz`` and an authenticated ``GET /v1/me`` both answer 200."""
    client = Client(load)
    while time.time() < until:
        me = client.call("GET", "/v1/me", probe, accept=(200,), until=until)
        ready = client.send("GET", "/readyz", token=None)
        if me is not None and ready is not None and ready.status_code == 200:
            return time.time()
        time.sleep(0.25)
    return None


def _await_terminal(stack: ChaosStack, load: Load, fault: Fault, fault_end: float, deadline_s: float) -> float | None:
    """Poll until every accepted job is terminal (or past its deadline) and the recovery signal was seen."""
    give_up = max([fault_end, *(a.accepted_at for a in load.accepted)]) + deadline_s
    probe_at = None
    while True:
        if fault.recovered_probe is not None and probe_at is None:
            probe_at = fault.recovered_probe()
        states = job_states(stack, [a.job_id for a in load.accepted])
        pending = [a for a in load.accepted if a.job_id not in states or states[a.job_id].status not in TERMINAL]
        signal_seen = fault.recovered_probe is None or probe_at is not None
        if (not pending and signal_seen) or time.time() > give_up:
            return probe_at
        time.sleep(POLL_S)
