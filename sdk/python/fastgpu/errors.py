"""Exceptions: one class per error code of the FastGPU API, each carrying the server's message.

The server answers every error with ``{"error": {"code": "...", "message": "..."}}`` and an HTTP status.
:func:`error_from_response` turns that into the matching class below; ``str(err)`` is the server's message.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type


class FastGPUError(Exception):
    """Base class of every error this package raises."""

    code: str = "error"

    def __init__(self, message: str, *, code: Optional[str] = None, http_status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message


class APIError(FastGPUError):
    """An error answered by the server (4xx/5xx with a JSON error body)."""


class InvalidRequest(APIError):
    """Bad input (HTTP 400, ``invalid_argument``); also raised before sending when an argument is wrong."""

    code = "invalid_argument"


class PayloadTooLarge(InvalidRequest):
    """The request body is over the server's limit (HTTP 413)."""

    code = "payload_too_large"


class NotSupported(InvalidRequest):
    """The request asks for something FastGPU does not offer (yet); ``feature`` names it."""

    def __init__(self, message: str, *, feature: str) -> None:
        super().__init__(message, code="not_supported")
        self.feature = feature


class Unauthenticated(APIError):
    """Missing, wrong, expired or revoked token (HTTP 401)."""

    code = "unauthenticated"


class PermissionDenied(APIError):
    """The token is valid but its user may not do this (HTTP 403), e.g. a viewer cancelling a job."""

    code = "permission_denied"


class NotFound(APIError):
    """No such job, project, user, secret, route... (HTTP 404). Also what a stranger gets for others' objects."""

    code = "not_found"


class Conflict(APIError):
    """HTTP 409: the object exists already, or its state does not allow the change."""

    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class FailedPrecondition(Conflict):
    """The state does not allow it (e.g. cancelling a job that has ended)."""

    code = "failed_precondition"


class Unschedulable(APIError):
    """The job can never run on this cluster (HTTP 422): more GPUs than a node has, an unknown GPU type..."""

    code = "unschedulable"


class QuotaExceeded(APIError):
    """A quota or rate limit (HTTP 429, ``resource_exhausted``); also a job larger than its project's GPU quota."""

    code = "resource_exhausted"


class QuotaUnschedulable(Unschedulable, QuotaExceeded):
    """A job larger than its project's GPU quota: it could never start (HTTP 422, message ``quota: ...``)."""

    code = "unschedulable"


class DeadlineExceeded(APIError):
    code = "deadline_exceeded"


class Unavailable(APIError):
    """The server is unavailable (HTTP 503), or cannot be reached at all (:class:`ConnectionFailed`)."""

    code = "unavailable"


class ConnectionFailed(Unavailable):
    """No answer from the server: refused, reset, timed out, or TLS failed. Says which URL and where it came from."""

    code = "connection_failed"


class TLSError(ConnectionFailed):
    """The server's certificate is not trusted (pass ``ca_file=`` or set ``FASTGPU_CA``) or the handshake failed."""

    code = "tls"


class InternalError(APIError):
    code = "internal"


class ClientClosed(FastGPUError):
    """The :class:`fastgpu.Client` was closed."""

    code = "client_closed"


class WaitTimeout(FastGPUError, TimeoutError):
    """A wait ended at its timeout before the job did; ``job`` is the job as it was then."""

    code = "wait_timeout"

    def __init__(self, message: str, job: Any = None) -> None:
        super().__init__(message)
        self.job = job


class JobFailed(FastGPUError):
    """Raised by ``Task.result(raise_on_failure=True)`` for a job that ended FAILED, CANCELLED or LOST."""

    code = "job_failed"

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


_BY_CODE: Dict[str, Type[APIError]] = {
    "invalid_argument": InvalidRequest,
    "payload_too_large": PayloadTooLarge,
    "unauthenticated": Unauthenticated,
    "permission_denied": PermissionDenied,
    "not_found": NotFound,
    "already_exists": AlreadyExists,
    "failed_precondition": FailedPrecondition,
    "unschedulable": Unschedulable,
    "resource_exhausted": QuotaExceeded,
    "deadline_exceeded": DeadlineExceeded,
    "unavailable": Unavailable,
    "internal": InternalError,
}

_BY_STATUS: Dict[int, Type[APIError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    405: InvalidRequest,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unschedulable,
    429: QuotaExceeded,
    503: Unavailable,
    504: DeadlineExceeded,
}


def error_from_response(status: int, body: bytes) -> APIError:
    """The exception for an error answer: by the body's error code, else by the HTTP status."""
    code = ""
    message = ""
    try:
        doc: Any = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or "")
            message = str(err.get("message") or "")
        elif isinstance(err, str):  # OAuth errors: {"error": "invalid_client", "error_description": "..."}
            code = err
            message = str(doc.get("error_description") or err)
    if not message:
        first = body.decode("utf-8", "replace").split("\n", 1)[0][:200] if body else ""
        message = f"server answered HTTP {status}" + (f": {first}" if first else "")
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or (InternalError if status >= 500 else APIError)
    if cls is Unschedulable and message.startswith("quota:"):
        cls = QuotaUnschedulable
    return cls(message, code=code or cls.code, http_status=status)
