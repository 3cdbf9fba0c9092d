"""Calling other functions: ``trigger`` (wait for the result), ``spawn`` (start now,
``wait()`` later) and ``trigger_void`` (nobody waits), as iii's SDKs offer them.
Payloads and results are JSON values (dicts, lists, ...); channel refs go inside them as
plain dicts.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from componentize_py_types import Err
from wit_world.imports import functions as wit

from .errors import CALL_ERRORS, CallError

_KINDS = {
    wit.CallError_NotFound: "not-found",
    wit.CallError_InvalidInput: "invalid-input",
    wit.CallError_Failed: "failed",
    wit.CallError_TimedOut: "timed-out",
    wit.CallError_LimitExceeded: "limit-exceeded",
    wit.CallError_Unavailable: "unavailable",
}


def _raise(err: Err) -> None:
    kind = _KINDS.get(type(err.value))
    if kind is None:
        raise CallError(repr(err.value)) from None
    detail = getattr(err.value, "value", None)
    raise CALL_ERRORS[kind](detail if isinstance(detail, str) else None) from None


def _options(timeout_ms: Optional[int]) -> wit.CallOptions:
    return wit.CallOptions(timeout_ms)


def trigger(function_id: str, payload: Any = None, *, timeout_ms: Optional[int] = None) -> Any:
    """Call ``function_id`` with ``payload`` and return its result.

    Raises a :class:`~rill_guest.errors.CallError` subclass (``FunctionNotFound``,
    ``CallFailed``, ``CallTimedOut``, ...)."""
    try:
        return json.loads(wit.trigger(function_id, json.dumps(payload), _options(timeout_ms)))
    except Err as err:
        _raise(err)


class PendingCall:
    """A call started by :func:`spawn`."""

    def __init__(self, handle: wit.PendingCall) -> None:
        self._handle = handle

    def wait(self) -> Any:
        """Wait for the call's result (once)."""
        try:
            return json.loads(self._handle.wait())
        except Err as err:
            _raise(err)


def spawn(function_id: str, payload: Any = None, *, timeout_ms: Optional[int] = None) -> PendingCall:
    """Start a call and return at once; ``wait()`` collects its result."""
    try:
        return PendingCall(wit.spawn(function_id, json.dumps(payload), _options(timeout_ms)))
    except Err as err:
        _raise(err)
        raise


def trigger_void(function_id: str, payload: Any = None, *, timeout_ms: Optional[int] = None) -> None:
    """Start a call nobody waits for (iii's ``void``). Errors found before it starts
    (an unknown id) are still raised."""
    try:
        wit.trigger_void(function_id, json.dumps(payload), _options(timeout_ms))
    except Err as err:
        _raise(err)
