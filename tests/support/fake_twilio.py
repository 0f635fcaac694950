"""A Twilio-compatible Messages API on a real local HTTP server (pytest-httpserver), for tests.

It stands in for the outside world the way Twilio behaves on the wire, so the code under test uses
the real ``twilio`` client through ``TWILIO_API_BASE`` and nothing of ours or of the library is
patched:

- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` is recorded (form fields, whether the HTTP Basic
  credentials were this account's) and answered 201 with an ``SM...`` sid and Twilio's JSON fields;
  wrong credentials get Twilio's 401 (code 20003), a request without ``To``/``From``/content gets
  the 400 Twilio gives (21604, 21603, 21602), an unparseable ``ContentVariables`` 21656.
- ``fail_next(n, status, code)`` scripts the next ``n`` answers as Twilio errors
  (``{"code", "message", "more_info", "status"}``), or as a non-JSON page (``json_body=False``), the
  way a load balancer answers a 502.
- ``hold_next()`` keeps the next request waiting (recorded on arrival) until the test releases
  it, so a test can SIGKILL the worker that is inside the provider call.
- ``status_callback(...)`` POSTs one of Twilio's form-encoded status callbacks, signed with
  ``twilio.request_validator.RequestValidator.compute_signature`` over the public URL.

The server is threaded: a held request does not stop other requests from being answered.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import requests
from pytest_httpserver import HTTPServer
from twilio.request_validator import RequestValidator
from werkzeug import Request, Response

ACCOUNT_SID = "AC" + "f4e3d2c1b0a9" * 2 + "5e6d7c8b"
AUTH_TOKEN = "fake-twilio-auth-token-" + "9c1f" * 4
WHATSAPP_FROM = "whatsapp:+14155238886"
API_VERSION = "2010-04-01"

#: Where no Twilio listens (the discard port): a production-profile stack in a test that sends no
#: message still needs Twilio settings, and any message it did send would fail fast, locally.
NOWHERE_API_BASE = "http://127.0.0.1:9"
PUBLIC_BASE_URL = "https://api.estacionate.example"


def production_twilio_env() -> dict[str, str]:
    """The Twilio settings production refuses to start without, pointing nowhere."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_FROM": WHATSAPP_FROM,
        "TWILIO_API_BASE": NOWHERE_API_BASE,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }


_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Messages\.json$")

#: The messages Twilio sends with its codes (abridged); tests only rely on the codes.
_MESSAGES_BY_CODE = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number {to} is not a valid phone number.",
    21408: "Permission to send an SMS or MMS has not been enabled for the region indicated by the 'To' number: {to}",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21656: "The ContentVariables Parameter is invalid.",
    63014: "Message delivery failed because the user blocked your business",
    63016: "Failed to send freeform message because you are outside the allowed window.",
    63018: "Rate limit exceeded for Channel",
}
_DEFAULT_CODE_BY_STATUS = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20500}


@dataclass
class ReceivedRequest:
    """One request to the Messages endpoint, as Twilio would have seen it."""

    account_sid: str
    form: dict[str, str]
    authorized: bool
    received_at: float
    answered_status: int | None = None
    sid: str | None = None


@dataclass
class _Scripted:
    status: int
    code: int | None
    message: str | None
    json_body: bool


@dataclass
class Hold:
    """A request kept waiting: ``arrived`` is set when it is in, ``release()`` lets it be answered."""

    timeout: float
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    request: ReceivedRequest | None = None

    def wait_arrived(self, timeout: float = 30.0) -> ReceivedRequest:
        assert self.arrived.wait(timeout), f"no request reached the fake Twilio within {timeout} s"
        assert self.request is not None
        return self.request

    def release(self) -> None:
        self.released.set()


class FakeTwilio:
    def __init__(
        self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN, whatsapp_from: str = WHATSAPP_FROM
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.whatsapp_from = whatsapp_from
        self._lock = threading.Lock()
        self._received: list[ReceivedRequest] = []
        self._script: deque[_Scripted] = deque()
        self._holds: deque[Hold] = deque()
        self._all_holds: list[Hold] = []
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        self.server.start()
        return self

    def stop(self) -> None:
        for hold in self._all_holds:
            hold.release()  # never leave a server thread waiting
        if self.server.is_running():
            self.server.stop()

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_base(self) -> str:
        """What ``TWILIO_API_BASE`` must be to reach this server."""
        return f"http://{self.server.host}:{self.server.port}"

    def env(self) -> dict[str, str]:
        """The settings that point the app's real Twilio client here."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_WHATSAPP_FROM": self.whatsapp_from,
            "TWILIO_API_BASE": self.api_base,
        }

    # --- what arrived ------------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request to the Messages endpoint, in arrival order (held ones included)."""
        with self._lock:
            return list(self._received)

    @property
    def messages(self) -> list[ReceivedRequest]:
        """The requests Twilio would have accepted: authorized and answered 201."""
        return [r for r in self.requests if r.answered_status == 201]

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"only {len(self.requests)} of {count} requests reached the fake Twilio"
            time.sleep(0.02)
        return self.requests

    # --- scripting ---------------------------------------------------------------------------

    def fail_next(
        self, count: int, status: int, code: int | None = None, message: str | None = None, *, json_body: bool = True
    ) -> None:
        """Answer the next ``count`` authorized requests with this error instead of a 201."""
        code = code if code is not None else _DEFAULT_CODE_BY_STATUS.get(status)
        with self._lock:
            self._script.extend(_Scripted(status, code, message, json_body) for _ in range(count))

    def hold_next(self, timeout: float = 60.0) -> Hold:
        """Keep the next request waiting until ``release()`` (or ``timeout``), then answer it as usual."""
        hold = Hold(timeout)
        with self._lock:
            self._holds.append(hold)
            self._all_holds.append(hold)
        return hold

    # --- the server side ---------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        match = _MESSAGES.match(request.path)
        if request.method != "POST" or match is None:
            return self._error(404, 20404, f"The requested resource {request.path} was not found")
        received = ReceivedRequest(
            account_sid=match["account"],
            form={k: request.form[k] for k in request.form},
            authorized=self._authorized(request, match["account"]),
            received_at=time.time(),
        )
        with self._lock:
            self._received.append(received)
            hold = self._holds.popleft() if self._holds else None
        if hold is not None:
            hold.request = received
            hold.arrived.set()
            hold.released.wait(hold.timeout)
        response = self._answer(received)
        received.answered_status = response.status_code
        return response

    def _authorized(self, request: Request, account: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.account_sid == account and password == self.auth_token

    def _answer(self, received: ReceivedRequest) -> Response:
        if not received.authorized:
            return self._error(401, 20003)
        form = received.form
        if not form.get("To"):
            return self._error(400, 21604)
        if not form.get("From"):
            return self._error(400, 21603)
        if not form.get("Body") and not form.get("ContentSid"):
            return self._error(400, 21602)
        if "ContentVariables" in form:
            try:
                variables = json.loads(form["ContentVariables"])
            except ValueError:
                variables = None
            if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
                return self._error(400, 21656)
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return self._error(
                scripted.status, scripted.code, scripted.message, to=form["To"], json_body=scripted.json_body
            )
        received.sid = "SM" + uuid.uuid4().hex
        return self._json(201, self._resource(received))

    def _resource(self, received: ReceivedRequest) -> dict[str, Any]:
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        form, sid = received.form, received.sid
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form["From"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": None,
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }

    def _error(
        self, status: int, code: int | None, message: str | None = None, *, to: str = "", json_body: bool = True
    ) -> Response:
        if not json_body:
            return Response(f"<html><body><h1>{status}</h1></body></html>", status=status, content_type="text/html")
        text = message or _MESSAGES_BY_CODE.get(code or 0, "Error").format(to=to)
        return self._json(
            status,
            {
                "code": code,
                "message": text,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    @staticmethod
    def _json(status: int, document: dict[str, Any]) -> Response:
        return Response(json.dumps(document), status=status, content_type="application/json")

    # --- Twilio calling us -------------------------------------------------------------------

    def status_callback_params(
        self, sid: str, status: str, *, error_code: int | None = None, **extra: str
    ) -> dict[str, str]:
        """The form Twilio POSTs to a message's StatusCallback (To/From taken from the recorded message)."""
        sent = next((r for r in self.requests if r.sid == sid), None)
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "ChannelPrefix": "whatsapp",
        }
        if sent is not None:
            params.update(To=sent.form["To"], From=sent.form["From"])
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        params.update(extra)
        return params

    def status_callback(
        self,
        target_url: str,
        sid: str,
        status: str,
        *,
        signed_url: str | None = None,
        error_code: int | None = None,
        signature: str | None = None,
        sign: bool = True,
        **extra: str,
    ) -> requests.Response:
        """POST a status callback to ``target_url`` as Twilio would.

        ``signed_url`` is the URL Twilio believes it called (``PUBLIC_BASE_URL`` + path); it defaults
        to ``target_url``. ``signature`` replaces the computed one (a forgery); ``sign=False`` sends none.
        """
        params = self.status_callback_params(sid, status, error_code=error_code, **extra)
        return post_status_callback(
            target_url,
            params,
            auth_token=self.auth_token,
            signed_url=signed_url,
            signature=signature,
            sign=sign,
        )


def sign_status_callback(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio puts on a callback to ``url`` with these form fields."""
    return RequestValidator(auth_token).compute_signature(url, params)


def post_status_callback(
    target_url: str,
    params: dict[str, str],
    *,
    auth_token: str,
    signed_url: str | None = None,
    signature: str | None = None,
    sign: bool = True,
    timeout: float = 30.0,
) -> requests.Response:
    headers = {"User-Agent": "TwilioProxy/1.1", "Content-Type": "application/x-www-form-urlencoded"}
    if sign:
        headers["X-Twilio-Signature"] = signature or sign_status_callback(auth_token, signed_url or target_url, params)
    return requests.post(target_url, data=params, headers=headers, timeout=timeout)
