"""One helpful line for each way ``konorctl`` can fail to reach the Center.

Example::

    try:
        http.request(...)
    except httpx.HTTPError as exc:
        failure = classify(exc, url)
        if failure is Failure.DISCONNECTED and speaks_tls(url):
            failure = Failure.PLAIN_TO_TLS
        raise CenterError(explain(failure, Attempt(url, ca, configured), detail(exc)))

Invariants:

* :func:`classify` and :func:`explain` are pure: they read the exception chain
  (httpx → httpcore → ssl/socket) and the attempt, never the network.
  :func:`speaks_tls` is the one probe, used only to tell "plain HTTP sent to a
  TLS port" from a server that just hung up.
* Each message is one line that says what happened at which URL and what to do.
  Failures that name the CA say whether one was given (``--ca`` /
  ``KONORCTL_CA`` / a context) and where the Center keeps its own.
* When the URL is the built-in default (nothing configured) the message says so:
  "no Center is configured: run konorctl login or pass --center".
"""

from __future__ import annotations

import enum
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx


class Failure(enum.Enum):
    REFUSED = "refused"
    UNKNOWN_HOST = "unknown host"
    UNTRUSTED = "certificate not trusted"
    HOST_MISMATCH = "certificate for another name"
    EXPIRED = "certificate expired"
    TLS_TO_PLAIN = "https to a plain HTTP port"
    PLAIN_TO_TLS = "http to a TLS port"
    DISCONNECTED = "closed without an answer"
    TIMEOUT = "timed out"
    OTHER = "other"


@dataclass(frozen=True)
class Attempt:
    """What ``konorctl`` tried: the URL, the CA file it trusted (None: system CAs),
    and whether the URL was configured anywhere or is the built-in default."""

    url: str
    ca: str | None
    configured: bool = True


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def classify(exc: BaseException, url: str) -> Failure:
    """Which :class:`Failure` ``exc`` (raised by httpx for ``url``) is."""
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            code = getattr(cause, "verify_code", 0)
            message = str(getattr(cause, "verify_message", "")).lower()
            if code in (62, 64) or "mismatch" in message:
                return Failure.HOST_MISMATCH
            if code == 10 or "expired" in message:
                return Failure.EXPIRED
            return Failure.UNTRUSTED
        if isinstance(cause, ssl.SSLError):
            text = str(cause).lower()
            if any(s in text for s in ("wrong version", "http request", "record layer")):
                return Failure.TLS_TO_PLAIN
        if isinstance(cause, ConnectionRefusedError):
            return Failure.REFUSED
        if isinstance(cause, socket.gaierror):
            return Failure.UNKNOWN_HOST
    plain = urlsplit(url).scheme == "http"
    if plain and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return Failure.DISCONNECTED
    return Failure.OTHER


def _hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname or "", parts.port or default


def speaks_tls(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s host:port completes a TLS handshake (certificate unchecked)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(_hostport(url), timeout=timeout) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return tls.version() is not None
    except (OSError, ssl.SSLError):
        return False


def detail(exc: BaseException) -> str:
    """The innermost error's text, for messages that quote it."""
    inner = _chain(exc)[-1]
    return str(getattr(inner, "verify_message", "") or inner) or type(inner).__name__


def _ca_hint() -> str:
    from konorkestra.cli.center import default_data_dir

    return (
        "the Center writes its CA to <data>/ca.pem and prints that path at start "
        f"(default {default_data_dir() / 'ca.pem'})"
    )


def explain(failure: Failure, attempt: Attempt, why: str = "") -> str:
    """The one-line message for ``failure`` at ``attempt``: "cannot connect to the
    Center at URL: what happened; what to do"."""
    url = attempt.url
    host, port = _hostport(url)
    where = f"{host}:{port}"
    if failure is Failure.REFUSED:
        text = f"nothing is listening at {where} (connection refused)"
        text += " — is `konorkestra center` running?"
    elif failure is Failure.UNKNOWN_HOST:
        text = f"unknown host {host!r}; check --center"
    elif failure is Failure.UNTRUSTED and attempt.ca is None:
        text = (f"its certificate is not trusted (no CA given): pass --ca FILE or set "
                f"KONORCTL_CA; {_ca_hint()}")  # fmt: skip
    elif failure is Failure.UNTRUSTED:
        text = (f"the certificate at {url} is not signed by CA {attempt.ca}: wrong CA "
                f"file, or another server? {_ca_hint()}")  # fmt: skip
    elif failure is Failure.HOST_MISMATCH:
        text = (f"its certificate is not valid for {host!r} ({why}); use a name it lists, "
                f"or restart the Center with --tls-san {host}")  # fmt: skip
    elif failure is Failure.EXPIRED:
        text = f"its certificate has expired, or this clock is wrong ({why})"
    elif failure is Failure.TLS_TO_PLAIN:
        text = (f"{where} speaks plain HTTP, not TLS; use http://{where} (the Center "
                "serves TLS unless started with --no-tls)")  # fmt: skip
    elif failure is Failure.PLAIN_TO_TLS:
        text = f"{where} speaks TLS; use https://{where}"
    elif failure is Failure.DISCONNECTED:
        text = "the server closed the connection without answering"
    elif failure is Failure.TIMEOUT:
        text = f"no answer in time ({why or 'timeout'}); is {where} the Center, and up?"
    else:
        text = why
    tail = (
        ""
        if attempt.configured
        else " (no Center is configured: run konorctl login or pass --center)"
    )
    return f"cannot connect to the Center at {url}: {text}{tail}"
