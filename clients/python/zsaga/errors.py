"""Errors of the zsaga library. Every refusal from zsagad carries the
protocol's code (docs/protocol.md, "Error codes") and its reason."""
from typing import Any, Dict, Optional


class ZsagaError(Exception):
    """Base of every error raised by this library."""

    def __init__(self, code: str, reason: str, reply: Optional[Dict[str, Any]] = None):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.reply = reply or {}


class Rejected(ZsagaError):
    """zsagad refused a submit (`rejected`): invalid_saga, invalid_params,
    unknown_system, conflict, journal_full, forbidden, ..."""


class RequestError(ZsagaError):
    """zsagad answered a request with `error`: not_found, bad_state,
    forbidden, invalid, ..."""


class InvalidParams(ZsagaError):
    """A step's params do not match the operation's declared schema;
    found before sending (code invalid_params, as zsagad would say)."""


class NoAnswer(ZsagaError):
    """zsagad did not answer within the timeout (code no_answer): it is
    down, or refused this key at the CURVE handshake without a word."""


class Timeout(ZsagaError):
    """wait() gave up before the saga ended (code timeout)."""


class Fail(Exception):
    """Raised by an operation: it failed for good. Its effect is rolled
    back, the verdict is kept by the barrier, and the saga compensates."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RetryLater(Exception):
    """Raised by an operation: a transient condition; zsagad tries the
    step again after its backoff."""

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message
