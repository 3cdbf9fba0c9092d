"""Hostile Python: each attack must hurt only its own call (tests/all/python.rs).

- `py::hostile::loop`: spins forever; its deadline stops it.
- `py::hostile::memory_bomb`: allocates 1 MiB at a time, keeping it all; the memory limit
  stops it.
- `py::hostile::huge_write`: hands ``bytes`` bytes to the host in one write to the
  writer ref at ``writer``; past the per-call copy limit the call fails and the stream
  is aborted.
"""

import rill_guest
from rill_guest import WitWorld  # noqa: F401  (the component's export)


@rill_guest.function("py::hostile::loop")
def spin(payload):
    while True:
        pass


@rill_guest.function("py::hostile::memory_bomb")
def memory_bomb(payload):
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


@rill_guest.function("py::hostile::huge_write")
def huge_write(payload):
    with rill_guest.open_writer(payload["writer"]) as writer:
        writer.write(bytes(payload["bytes"]))
    return {"written": payload["bytes"]}
