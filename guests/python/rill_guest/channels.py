"""Channels as file-like objects over rill's WIT `channels` interface.

A :class:`Writer` takes bytes (``write``) and text messages (``send_text``); its end
is explicit: ``close()`` is the clean end, ``abort(reason)`` a failure its reader sees
as :class:`~rill_guest.errors.ChannelAborted`. Used as a context manager it closes on
success and aborts with the exception on failure, and a writer dropped without either
is aborted by the host, never taken for a whole stream.

A :class:`Reader` gives the stream back: ``read(n)``, ``read()`` to the end, iteration
over byte chunks, or :meth:`Reader.items` for bytes and text messages in order.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

from componentize_py_types import Err
from wit_world.imports import channels as wit

from .errors import CHANNEL_ERRORS, ChannelError
from .refs import parse_channel_ref

#: The most bytes one read asks the host for (64 KiB, rill's largest chunk).
MAX_READ_BYTES = 64 << 10


def _raise(err: Err) -> None:
    """The WIT error inside ``err`` as the matching Python exception."""
    value = err.value
    kind = {
        wit.ChannelError_NotFound: "not-found",
        wit.ChannelError_AlreadyAttached: "already-attached",
        wit.ChannelError_Closed: "closed",
        wit.ChannelError_Aborted: "aborted",
        wit.ChannelError_TimedOut: "timed-out",
        wit.ChannelError_LimitExceeded: "limit-exceeded",
        wit.ChannelError_Finished: "finished",
        wit.ChannelError_InvalidArgument: "invalid-argument",
    }.get(type(value))
    if kind is None:
        raise ChannelError(repr(value)) from None
    detail = getattr(value, "value", None)
    raise CHANNEL_ERRORS[kind](detail if isinstance(detail, str) else None) from None


def _to_wit(ref: Any) -> wit.ChannelRef:
    ref = parse_channel_ref(ref)
    direction = wit.Direction.READ if ref["direction"] == "read" else wit.Direction.WRITE
    return wit.ChannelRef(ref["channel_id"], ref["access_key"], direction)


def _from_wit(ref: wit.ChannelRef) -> dict[str, str]:
    direction = "read" if ref.direction == wit.Direction.READ else "write"
    return {"channel_id": ref.channel_id, "access_key": ref.access_key, "direction": direction}


class Writer(io.RawIOBase):
    """The writing end of a channel. ``write`` returns once the host's buffer took the
    bytes (it waits while the buffer is full: backpressure)."""

    def __init__(self, handle: wit.Writer) -> None:
        super().__init__()
        self._handle: Optional[wit.Writer] = handle

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        handle = self._open()
        chunk = bytes(data)
        try:
            handle.write(chunk)
        except Err as err:
            _raise(err)
        return len(chunk)

    def send_text(self, text: str) -> None:
        """Send a text message, in order with the bytes."""
        try:
            self._open().send_text(text)
        except Err as err:
            _raise(err)

    def close(self) -> None:
        """The clean end: the reader sees the end of the stream after the last byte.
        Closing twice is a no-op, as for files."""
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except Err as err:
                _raise(err)
            finally:
                handle.__exit__(None, None, None)
        super().close()

    def abort(self, reason: str) -> None:
        """End the stream as a failure: the reader gets ``ChannelAborted(reason)``."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.abort(reason)
            handle.__exit__(None, None, None)
        super().close()

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(f"{type(exc).__name__}: {exc}")

    def __del__(self) -> None:
        # Never a clean end by accident (io's own __del__ would close): a writer
        # forgotten without close() or abort() is dropped, and the host aborts it.
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.__exit__(None, None, None)

    def _open(self) -> wit.Writer:
        if self._handle is None:
            raise ValueError("I/O operation on a closed channel writer")
        return self._handle


class Reader(io.RawIOBase):
    """The reading end of a channel. Text messages met by ``read`` are kept, in order,
    in :attr:`messages`; :meth:`items` yields them in place instead."""

    def __init__(self, handle: wit.Reader) -> None:
        super().__init__()
        self._handle: Optional[wit.Reader] = handle
        self._pending = b""
        self._ended = False
        #: Text messages ``read`` passed over, in order.
        self.messages: list[str] = []

    def readable(self) -> bool:
        return True

    def _next(self, max_bytes: int) -> Union[bytes, str, None]:
        """The next item: bytes, a text message, or ``None`` at the clean end."""
        if self._ended:
            return None
        if self._handle is None:
            raise ValueError("I/O operation on a closed channel reader")
        try:
            item = self._handle.read(max_bytes)
        except Err as err:
            _raise(err)
        if isinstance(item, wit.Item_Bytes):
            return item.value
        if isinstance(item, wit.Item_Text):
            return item.value
        self._ended = True
        return None

    def items(self) -> Iterator[Union[bytes, str]]:
        """Bytes chunks and text messages, in order, until the clean end."""
        if self._pending:
            chunk, self._pending = self._pending, b""
            yield chunk
        while (item := self._next(MAX_READ_BYTES)) is not None:
            yield item

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all of the rest for -1); ``b""`` only at the end."""
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        while not self._pending:
            item = self._next(min(max(size, 1), MAX_READ_BYTES))
            if item is None:
                return b""
            if isinstance(item, str):
                self.messages.append(item)
            else:
                self._pending = item
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(MAX_READ_BYTES), b""))

    def readinto(self, buffer: Any) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        """Byte chunks as they come (not lines: a stream is not text)."""
        return iter(lambda: self.read(MAX_READ_BYTES), b"")

    def close(self) -> None:
        """Stop reading: the writer's next write fails with ``closed``."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.__exit__(None, None, None)
        super().close()


@dataclass
class Channel:
    """A new channel: both local ends and both refs, as iii's ``create_channel`` gives
    them. Pass a ref inside a payload to hand an end to another function."""

    writer: Writer
    reader: Reader
    writer_ref: dict[str, str]
    reader_ref: dict[str, str]


def create_channel(buffer_bytes: Optional[int] = None) -> Channel:
    """A new channel whose buffer holds ``buffer_bytes`` (the host's default if
    ``None``)."""
    try:
        made = wit.create(wit.ChannelOptions(buffer_bytes))
    except Err as err:
        _raise(err)
    return Channel(Writer(made.writer), Reader(made.reader), _from_wit(made.writer_ref), _from_wit(made.reader_ref))


def open_reader(ref: Any) -> Reader:
    """Attach the reading end named by a read ref (a dict from a payload)."""
    try:
        return Reader(wit.open_reader(_to_wit(ref)))
    except Err as err:
        _raise(err)
        raise  # unreachable: _raise always raises


def open_writer(ref: Any) -> Writer:
    """Attach the writing end named by a write ref (a dict from a payload)."""
    try:
        return Writer(wit.open_writer(_to_wit(ref)))
    except Err as err:
        _raise(err)
        raise
