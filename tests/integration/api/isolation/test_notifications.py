"""Notifications' endpoints in the isolation matrix: none is tenant-scoped, each says why.

``GET /v1/me/notifications`` filters on the caller's own user id (no scope comes from the request),
which tests/integration/notifications/test_acceptance.py shows with two residents of one building;
the provider callback is authenticated by Twilio's signature, not by a session.
"""

from __future__ import annotations

from tests.support.isolation import Matrix, NotTenantScoped

MATRIX: Matrix = {
    ("GET", "/v1/me/notifications"): NotTenantScoped("the caller's own messages (user_id = the caller)"),
    ("PATCH", "/v1/me/notification-preferences"): NotTenantScoped("the caller's own preferences"),
    ("POST", "/v1/auth/password-reset"): NotTenantScoped("public: the same 202 for every e-mail, nothing read back"),
    ("POST", "/v1/auth/password-reset/confirm"): NotTenantScoped("public: an e-mail and its code; 204 or one 422"),
    ("POST", "/v1/webhooks/twilio/status"): NotTenantScoped("Twilio's signed callback; no session, no tenant"),
}
