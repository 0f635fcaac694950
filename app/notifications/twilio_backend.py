"""WhatsApp through the official ``twilio`` client, at whatever host ``TWILIO_API_BASE`` names.

The library has no base-URL option, and ``edge``/``region`` only rewrite host names inside
``twilio.com``, so a local Twilio-compatible server (the tests') is reached through a custom
``http_client``: ``BaseUrlHttpClient`` moves the ``https://api.twilio.com`` prefix of every URL the
library builds to the configured base and refuses any other URL, so nothing can leave for a host
we did not configure. It also takes the per-request timeout, and replaces the library's request
and response logging (URL and every header on INFO) with one line of ours.

One message is one ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json`` with ``To=whatsapp:+...``,
``From``, ``StatusCallback``, and either ``Body`` or, when ``TWILIO_CONTENT_SIDS`` names the
template, ``ContentSid`` + ``ContentVariables``. The library does not retry (its adapter has no
retries): a failure surfaces at once as ``ProviderError``, built from ``TwilioException`` (status and
Twilio code) or from ``requests``' own exceptions (timeouts and refused connections never reach
the library's error handling). Log lines carry template, sid, status, code and latency, never the
phone number or the content.

A backend holds a pooled HTTP session: build one per process (after a prefork worker forks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from app.domain.notifications import Template
from app.notifications.backend import OutboundMessage, ProviderError, SendFailure, SendResult

log = logging.getLogger(__name__)

TWILIO_API_HOST = "https://api.twilio.com"
DEFAULT_TIMEOUT_SECONDS = 10.0

#: The library reads TWILIO_EDGE / TWILIO_REGION from its ``environment`` (default: os.environ),
#: which would move requests to another twilio.com host; settings are our only configuration.
_NO_ENVIRONMENT = {"TWILIO_EDGE": "", "TWILIO_REGION": ""}


class BaseUrlHttpClient(TwilioHttpClient):
    """``TwilioHttpClient`` sending what the library addresses to ``https://api.twilio.com`` to ``api_base``."""

    def __init__(self, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.api_base = api_base.rstrip("/")

    def rewrite(self, url: str) -> str:
        if url != TWILIO_API_HOST and not url.startswith(TWILIO_API_HOST + "/"):
            raise TwilioException("refusing a Twilio URL outside https://api.twilio.com")
        return self.api_base + url[len(TWILIO_API_HOST) :]

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )

    def log_request(self, kwargs: dict[str, Any]) -> None:
        """Silenced: the backend logs one line per message, without the library's header dump."""

    def log_response(self, status_code: int, response: Any) -> None:
        """Silenced, as ``log_request``."""


class TwilioBackend:
    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        whatsapp_from: str,
        status_callback_url: str,
        api_base: str = TWILIO_API_HOST,
        content_sids: Mapping[str, str] | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not account_sid:
            raise ValueError("a Twilio account sid is required")
        if not auth_token:
            raise ValueError("a Twilio auth token is required")
        if not whatsapp_from.startswith("whatsapp:+"):
            raise ValueError("the sender must be a WhatsApp address, whatsapp:+E164")
        if not status_callback_url.startswith(("https://", "http://")):
            raise ValueError("an absolute status callback URL is required (PUBLIC_BASE_URL)")
        if timeout_seconds <= 0:
            raise ValueError("the timeout must be positive")
        sids = dict(content_sids or {})
        known = {t.value for t in Template}
        for template, sid in sids.items():
            if template not in known:
                raise ValueError(f"TWILIO_CONTENT_SIDS names an unknown template: {template}")
            if not sid:
                raise ValueError(f"TWILIO_CONTENT_SIDS has an empty ContentSid for {template}")
        self.account_sid = account_sid
        self.whatsapp_from = whatsapp_from
        self.status_callback_url = status_callback_url
        self.content_sids = sids
        self.http_client = BaseUrlHttpClient(api_base, timeout=timeout_seconds)
        self._client = Client(account_sid, auth_token, http_client=self.http_client, environment=dict(_NO_ENVIRONMENT))

    def __repr__(self) -> str:
        return f"TwilioBackend(account_sid={self.account_sid!r}, api_base={self.http_client.api_base!r})"

    def send(self, message: OutboundMessage) -> SendResult:
        rendered = message.rendered
        fields: dict[str, Any] = {
            "to": message.whatsapp_to(),
            "from_": self.whatsapp_from,
            "status_callback": self.status_callback_url,
        }
        content_sid = self.content_sids.get(rendered.template.value)
        if content_sid:
            fields.update(content_sid=content_sid, content_variables=rendered.content_variables_json())
        else:
            fields["body"] = rendered.body
        context = {"template": rendered.template.value, "notification_id": message.reference}
        started = time.monotonic()
        try:
            created = self._client.messages.create(**fields)
        except (TwilioException, requests.RequestException) as exc:
            error = _provider_error(exc, with_template=bool(content_sid))
            log.warning(
                "twilio send failed",
                extra={
                    **context,
                    "http_status": error.status,
                    "error_code": error.code,
                    "timed_out": error.timed_out,
                    "maybe_sent": error.maybe_sent,
                    "retryable": error.retryable,
                    "latency_ms": _elapsed_ms(started),
                },
            )
            # ``from None``: the library's exception text quotes Twilio's message, which quotes the number.
            raise error from None
        result = SendResult(provider_sid=created.sid, status=str(created.status))
        log.info(
            "twilio message created",
            extra={
                **context,
                "provider_sid": result.provider_sid,
                "provider_status": result.status,
                "latency_ms": _elapsed_ms(started),
            },
        )
        return result


def _provider_error(exc: Exception, *, with_template: bool) -> ProviderError:
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status) if exc.status is not None else None
        # Without a JSON body the library reports the HTTP status as the code: that is no Twilio code.
        code = int(exc.code) if exc.code is not None and exc.code != status else None
        failure = SendFailure(http_status=status, error_code=code, with_template=with_template)
        return ProviderError(failure, maybe_sent=False)
    if isinstance(exc, requests.Timeout):
        # A connect timeout never reached Twilio; a read timeout did, and its outcome is unknown.
        failure = SendFailure(timed_out=True, with_template=with_template)
        return ProviderError(failure, maybe_sent=not isinstance(exc, requests.ConnectTimeout))
    failure = SendFailure(with_template=with_template)
    if isinstance(exc, requests.RequestException):
        return ProviderError(failure, maybe_sent=not _never_connected(exc))
    # Any other TwilioException is raised before a request goes out.
    return ProviderError(failure, maybe_sent=False)


def _never_connected(exc: requests.RequestException) -> bool:
    """A refused connection or an unknown host: nothing was sent (urllib3 wraps it in a retry error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = reason if isinstance(reason, BaseException) else nested
    return False


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
