"""The isolation matrix for bookings and the gate: booking, listing, reading, cancelling, check-in/out, lookup.

The harness (callers, profiles, aims, checks, the run of a case) is tests/support/isolation.py.
"""

from __future__ import annotations

import uuid

from tests.support.isolation import (
    ANONYMOUS,
    BOOKING_GATE,
    BOOKING_STATE,
    BOOKING_VIEW,
    BUILDING_ADMIN,
    CONCIERGE,
    NEIGHBOUR,
    ORG_ADMIN,
    OTHER_BUILDING_ADMIN,
    OTHER_BUILDING_RESIDENT,
    OTHER_ORG_RESIDENT,
    PLATFORM_ADMIN,
    RESIDENT,
    SUPPORT,
    Ctx,
    Job,
    Matrix,
    Scoped,
    at_fresh_bookable_block,
    at_fresh_booking,
    at_shared_booking,
    block_and_bookings,
    booking_body,
    check_booking_list,
    check_is_the_booking,
    parametrize,
    run_case,
    shared_window,
)

MATRIX: Matrix = {
    ("POST", "/v1/bookings"): Scoped(
        "booking",
        {
            # Only residents book (403 before any lookup); a block outside the resident's building
            # is the job's typed not-found, exactly like a block that does not exist.
            **{caller: 403 for caller in BOOKING_VIEW},
            ANONYMOUS: 401,
            OTHER_ORG_RESIDENT: Job("not-found"),
            OTHER_BUILDING_RESIDENT: Job("not-found"),
            RESIDENT: Job(),
            NEIGHBOUR: Job(),
        },
        at_fresh_bookable_block,
        "bookings",
        body=lambda ctx, tenant, label, aim: booking_body(ctx, aim.ref("block_id")),
        missing_body=lambda ctx: booking_body(ctx, str(uuid.uuid4())),
        snapshot=block_and_bookings,
    ),
    ("GET", "/v1/bookings"): Scoped(
        "caller_list",
        {**{caller: 200 for caller in BOOKING_VIEW if caller != OTHER_BUILDING_ADMIN}, ANONYMOUS: 401},
        at_shared_booking(in_url=False),
        "bookings",
        query=shared_window,
        check=check_booking_list,
    ),
    ("GET", "/v1/bookings/<booking_id>"): Scoped(
        "booking", BOOKING_VIEW, at_shared_booking(in_url=True), "bookings", check=check_is_the_booking
    ),
    ("POST", "/v1/bookings/<booking_id>/cancel"): Scoped(
        "booking",
        {
            **BOOKING_VIEW,
            RESIDENT: Job(),  # the booker, before the block starts
            BUILDING_ADMIN: Job(),
            ORG_ADMIN: Job(),
            PLATFORM_ADMIN: Job(),
            SUPPORT: 403,  # read-only everywhere
            # "staff of that building" (DOMAIN.md) may cancel; if a concierge may not, 403.
            CONCIERGE: (Job(), 403),
        },
        at_fresh_booking(),
        "bookings",
        body=lambda ctx, tenant, label, aim: {},
        snapshot=BOOKING_STATE,
    ),
    ("POST", "/v1/bookings/<booking_id>/check-in"): Scoped(
        "booking",
        BOOKING_GATE,
        at_fresh_booking(soon=True),
        "bookings",
        body=lambda ctx, tenant, label, aim: {},
        snapshot=BOOKING_STATE,
        check=check_is_the_booking,
    ),
    ("POST", "/v1/bookings/<booking_id>/check-out"): Scoped(
        "booking",
        BOOKING_GATE,
        at_fresh_booking(soon=True, checked_in=True),
        "bookings",
        body=lambda ctx, tenant, label, aim: {},
        snapshot=BOOKING_STATE,
        check=check_is_the_booking,
    ),
    ("POST", "/v1/gate/lookup"): Scoped(
        "booking",
        {
            **BOOKING_GATE,
            # not gate staff anywhere: refused, or simply nothing found; neither says the code exists
            RESIDENT: (403, 404),
            NEIGHBOUR: (403, 404),
            OTHER_BUILDING_RESIDENT: (403, 404),
            SUPPORT: (403, 404),
        },
        at_shared_booking(in_url=False),
        "bookings",
        body=lambda ctx, tenant, label, aim: {
            "confirmation_code": ctx.shared[tenant.buildings[label]]["confirmation_code"]
        },
        missing_body=lambda ctx: {"confirmation_code": "ZZZZZZZZ"},
        check=check_is_the_booking,
        read_only=True,
    ),
}


@parametrize(MATRIX)
def test_isolation_matrix(ctx: Ctx, key: tuple[str, str], caller: str):
    run_case(ctx, MATRIX, key, caller)
