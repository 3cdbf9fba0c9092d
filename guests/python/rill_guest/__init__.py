"""rill's guest SDK for Python (componentize-py).

A function is a Python function registered under an id; channels are file-like
objects; refs are plain dicts in iii's JSON shape; calls are ``trigger``, ``spawn`` and
``trigger_void``. The shortest complete function::

    import hashlib
    import rill_guest
    from rill_guest import WitWorld  # the component's export

    @rill_guest.function("py::files::process")
    def process(payload):
        digest, size = hashlib.sha256(), 0
        with rill_guest.open_reader(payload["reader"]) as reader:
            for chunk in reader:
                digest.update(chunk)
                size += len(chunk)
        return {"bytes": size, "sha256": digest.hexdigest()}
"""

from .calls import PendingCall, spawn, trigger, trigger_void
from .channels import Channel, Reader, Writer, create_channel, open_reader, open_writer
from .errors import (
    CallError,
    CallFailed,
    CallInvalidInput,
    CallLimitExceeded,
    CallTimedOut,
    CallUnavailable,
    ChannelAborted,
    ChannelAlreadyAttached,
    ChannelClosed,
    ChannelError,
    ChannelFinished,
    ChannelInvalidArgument,
    ChannelLimitExceeded,
    ChannelNotFound,
    ChannelTimedOut,
    FunctionNotFound,
)
from .function import WitWorld, function
from .refs import extract_channel_refs, is_channel_ref, parse_channel_ref

__all__ = [
    "CallError", "CallFailed", "CallInvalidInput", "CallLimitExceeded", "CallTimedOut", "CallUnavailable",
    "Channel", "ChannelAborted", "ChannelAlreadyAttached", "ChannelClosed", "ChannelError", "ChannelFinished",
    "ChannelInvalidArgument", "ChannelLimitExceeded", "ChannelNotFound", "ChannelTimedOut", "FunctionNotFound",
    "PendingCall", "Reader", "WitWorld", "Writer", "create_channel", "extract_channel_refs", "function",
    "is_channel_ref", "open_reader", "open_writer", "parse_channel_ref", "spawn", "trigger", "trigger_void",
]
