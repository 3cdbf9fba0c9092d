"""Errors as Python exceptions, each keeping its WIT error kind in ``kind``.

Channel errors are ``OSError``s, as a file's are; the kinds with a natural builtin
counterpart also derive from it (``closed`` is a ``BrokenPipeError``, ``aborted`` a
``ConnectionAbortedError``, ``timed-out`` a ``TimeoutError``, ``not-found`` a
``FileNotFoundError``), so ``except BrokenPipeError`` works on a channel as on a pipe.
The kinds are the WIT names listed in ``protocol/conformance/errors.json``.
"""

from __future__ import annotations


class ChannelError(OSError):
    """A channel operation failed. ``kind`` is the WIT case (``"aborted"``, ...) and
    ``detail`` its payload (an abort's reason), or ``None``."""

    kind = "channel-error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(f"{self.kind}: {detail}" if detail else self.kind)


class ChannelNotFound(ChannelError, FileNotFoundError):
    """No channel has this id and key (or it expired)."""

    kind = "not-found"


class ChannelAlreadyAttached(ChannelError):
    """This end of the channel is already open elsewhere."""

    kind = "already-attached"


class ChannelClosed(ChannelError, BrokenPipeError):
    """The other end is gone: nobody reads what is written."""

    kind = "closed"


class ChannelAborted(ChannelError, ConnectionAbortedError):
    """The writer aborted the stream (or trapped, or timed out); ``detail`` says why."""

    kind = "aborted"


class ChannelTimedOut(ChannelError, TimeoutError):
    """The call's deadline passed while waiting on the channel."""

    kind = "timed-out"


class ChannelLimitExceeded(ChannelError):
    """A limit was reached; ``detail`` names it."""

    kind = "limit-exceeded"


class ChannelFinished(ChannelError):
    """The writer was already closed or aborted."""

    kind = "finished"


class ChannelInvalidArgument(ChannelError, ValueError):
    """An argument was unacceptable; ``detail`` says which."""

    kind = "invalid-argument"


CHANNEL_ERRORS: dict[str, type[ChannelError]] = {
    cls.kind: cls
    for cls in (
        ChannelNotFound,
        ChannelAlreadyAttached,
        ChannelClosed,
        ChannelAborted,
        ChannelTimedOut,
        ChannelLimitExceeded,
        ChannelFinished,
        ChannelInvalidArgument,
    )
}


class CallError(Exception):
    """A call to another function failed. ``kind`` is the WIT case and ``detail`` its
    message."""

    kind = "call-error"

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(f"{self.kind}: {detail}" if detail else self.kind)


class FunctionNotFound(CallError, LookupError):
    """No function is registered under the id."""

    kind = "not-found"


class CallInvalidInput(CallError, ValueError):
    """The payload or id was unacceptable."""

    kind = "invalid-input"


class CallFailed(CallError):
    """The function ran and failed (its message), or trapped."""

    kind = "failed"


class CallTimedOut(CallError, TimeoutError):
    """The call did not finish before its deadline."""

    kind = "timed-out"


class CallLimitExceeded(CallError):
    """A limit was reached (call depth, payload size, ...)."""

    kind = "limit-exceeded"


class CallUnavailable(CallError):
    """The function could not be started or the host is at capacity; retrying may work."""

    kind = "unavailable"


CALL_ERRORS: dict[str, type[CallError]] = {
    cls.kind: cls
    for cls in (
        FunctionNotFound,
        CallInvalidInput,
        CallFailed,
        CallTimedOut,
        CallLimitExceeded,
        CallUnavailable,
    )
}
