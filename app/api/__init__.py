"""HTTP API: one blueprint module per resource; each endpoint validates, authorizes, then calls a
service or submits a job."""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from app.api import (
    admin,
    audit,
    auth,
    availability,
    blocklist,
    bookings,
    buildings,
    context,
    errors,
    jobs,
    me,
    memberships,
    notifications,
    ops,
    organizations,
    pricing,
    residents,
    system,
    webhook_endpoints,
)

RESOURCE_BLUEPRINTS = (
    auth.bp,
    residents.bp,
    me.bp,
    notifications.bp,
    notifications.callbacks_bp,
    jobs.bp,
    system.bp,
    admin.bp,
    organizations.bp,
    buildings.bp,
    availability.bp,
    bookings.bp,
    pricing.bp,
    blocklist.bp,
    webhook_endpoints.bp,
    audit.bp,
    memberships.bp,
)


def init_app(app: OpenAPI) -> None:
    errors.init_app(app)
    ops.init_app(app)
    for blueprint in RESOURCE_BLUEPRINTS:
        app.register_api(blueprint)
    context.init_app(app)  # authentication hooks: after the blueprints, before the rate limiter
