"""The matrix as a whole: every ``/v1`` endpoint has exactly one entry, and every entry is complete.

Each ``test_<resource>.py`` of this package holds a ``MATRIX`` of its endpoints; the endpoints that
are not tenant-scoped (the caller's own account, jobs and sessions, or public) are listed here, each
with the reason. A new endpoint without an entry in any of them fails here, and so does an entry for
an endpoint that is gone, or an endpoint listed twice.
"""

from __future__ import annotations

import importlib
import pkgutil

import tests.integration.api.isolation as package
from tests.support.isolation import Matrix, NotTenantScoped, check_entry

MATRIX: Matrix = {
    ("POST", "/v1/auth/register"): NotTenantScoped("public self sign-up; names a building but reads nothing back"),
    ("POST", "/v1/auth/login"): NotTenantScoped("public: credentials in, tokens out"),
    ("POST", "/v1/auth/mfa/verify"): NotTenantScoped("public: second factor of a pending login"),
    ("POST", "/v1/auth/mfa/enroll"): NotTenantScoped("the caller's own authenticator"),
    ("POST", "/v1/auth/mfa/confirm"): NotTenantScoped("the caller's own authenticator"),
    ("POST", "/v1/auth/mfa/disable"): NotTenantScoped("the caller's own authenticator"),
    ("POST", "/v1/auth/logout"): NotTenantScoped("the caller's own session"),
    ("POST", "/v1/auth/logout-all"): NotTenantScoped("the caller's own sessions"),
    ("GET", "/v1/auth/sessions"): NotTenantScoped("the caller's own sessions"),
    ("DELETE", "/v1/auth/sessions/<session_id>"): NotTenantScoped("the caller's own sessions"),
    ("POST", "/v1/auth/password"): NotTenantScoped("the caller's own password"),
    ("GET", "/v1/me"): NotTenantScoped("the caller's own account"),
    ("GET", "/v1/me/webhook-secret"): NotTenantScoped("the caller's own signing secret"),
    ("POST", "/v1/me/webhook-secret"): NotTenantScoped("the caller's own signing secret"),
    ("POST", "/v1/me/anonymize"): NotTenantScoped("the caller's own account (with their password)"),
    ("POST", "/v1/me/export"): NotTenantScoped("the caller's own data"),
    ("GET", "/v1/jobs"): NotTenantScoped("the caller's own jobs"),
    ("GET", "/v1/jobs/<job_id>"): NotTenantScoped("per user: the submitter and platform admins (rbac.can_view_job)"),
    ("POST", "/v1/system/ping"): NotTenantScoped("a no-op job any logged-in user may run"),
}


def whole_matrix() -> Matrix:
    """The union of every module's ``MATRIX``; an endpoint in two of them fails."""
    merged: Matrix = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        table = getattr(module, "MATRIX", None)
        if table is None:
            continue
        twice = merged.keys() & table.keys()
        assert not twice, f"in two modules: {sorted(twice)}"
        merged.update(table)
    return merged


def test_every_v1_endpoint_has_a_matrix_entry(stack):
    """A new endpoint without an entry fails here, and so does an entry for an endpoint that is gone."""
    matrix = whole_matrix()
    found = {
        (method, rule.rule)
        for rule in stack.app.url_map.iter_rules()
        if rule.rule.startswith("/v1/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert sorted(found - matrix.keys()) == [], "endpoints without a MATRIX entry (tenant-scoped or not?)"
    assert sorted(matrix.keys() - found) == [], "stale MATRIX entries"


def test_every_entry_says_why_or_covers_the_callers_that_matter():
    for key, entry in whole_matrix().items():
        check_entry(key, entry)
