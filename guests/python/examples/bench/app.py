"""The Python twins of `guests/rust/examples/bench`, for `rill bench`'s Python rows.

| id | payload | result |
| --- | --- | --- |
| `py::bench::noop` | anything | `{}` |
| `py::bench::write` | `{"writer", "total", "chunk"}` | `{"written"}` |
| `py::bench::read` | `{"reader", "chunk"}` | `{"read"}` |

The writer sends one pre-filled buffer per write and the reader asks for ``chunk`` bytes
per read, touching nothing else, so what is measured is Python's way across the host
boundary.
"""

import rill_guest
from rill_guest import WitWorld  # noqa: F401  (the component's export)


@rill_guest.function("py::bench::noop")
def noop(payload):
    return {}


@rill_guest.function("py::bench::write")
def write(payload):
    total, chunk = payload["total"], max(payload["chunk"], 1)
    buffer = bytes(range(256)) * (chunk // 256 + 1)
    buffer = buffer[:chunk]
    left = total
    with rill_guest.open_writer(payload["writer"]) as writer:
        while left >= chunk:
            writer.write(buffer)
            left -= chunk
        if left:
            writer.write(buffer[:left])
    return {"written": total}


@rill_guest.function("py::bench::read")
def read(payload):
    chunk, size = max(payload["chunk"], 1), 0
    with rill_guest.open_reader(payload["reader"]) as reader:
        while data := reader.read(chunk):
            size += len(data)
    return {"read": size}
