"""A stack of its own behind gunicorn, with the cast of every role, for tools that speak HTTP only.

Schemathesis and the generated client talk to a URL, as a user of the API would: this starts
the API as production runs it (gunicorn, config/gunicorn.py) on a database and Redis db of its
own, builds the tenant world through the API (staff log in through MFA), and adds the one role
the world lacks, a resident whose residency is not verified yet.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.support.stack import Stack, create_database, drop_database
from tests.support.world import World, build_world, valid_rut

_counter = itertools.count(1)

#: Each role's Authorization header (anonymous: none).
ROLES = (
    "anonymous",
    "unverified_resident",
    "verified_resident",
    "concierge",
    "building_admin",
    "org_admin",
    "platform_admin",
)


@dataclass
class LiveStack:
    stack: Stack
    base_url: str
    world: World
    headers: dict[str, dict[str, str]]


def unverified_resident(stack: Stack, building_id: str) -> dict[str, str]:
    """A resident who registered but whose building has not verified them: logs in, cannot book."""
    person = {
        "email": f"unverified-{uuid.uuid4().hex[:10]}@home.test",
        "password": "resident-password",
        "first_name": "Uma",
        "last_name": "Soto",
        "rut": valid_rut(),
        "building_id": building_id,
        "unit_number": "101",
    }
    response = stack.client().post("/v1/auth/register", json=person)
    assert response.status_code == 201, response.get_json()
    return stack.login(person)


@contextmanager
def live_stack(
    base_database_url: str,
    template_database: str,
    env_for: Any,
    workdir: Path,
    *,
    worker: bool = False,
    **overrides: str,
) -> Iterator[LiveStack]:
    """gunicorn on a clone of the template database (and a worker if asked), with every role logged in."""
    name = f"estacionate_test_{os.getpid()}_live{next(_counter)}"
    create_database(base_database_url, name, template=template_database)
    env = {**env_for(name), **overrides}
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    stack = Stack(env, workdir, "live")
    try:
        if worker:
            stack.start_worker()
        base_url = stack.start_api()
        world = build_world(stack)
        headers = {
            "anonymous": {},
            "unverified_resident": unverified_resident(stack, world.a.buildings["A1"]),
            "verified_resident": world.a.headers["resident"],
            "concierge": world.a.headers["concierge"],
            "building_admin": world.a.headers["building_admin"],
            "org_admin": world.a.headers["org_admin"],
            "platform_admin": world.admin,
        }
        yield LiveStack(stack, base_url, world, headers)
    finally:
        stack.close()
        drop_database(base_database_url, name)
