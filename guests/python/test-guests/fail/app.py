"""`py::test::write_then_raise`: writes ``bytes`` bytes to the writer ref at
``writer``, then raises. The stream must reach its reader as aborted with the
exception, never as a clean end."""

import rill_guest
from rill_guest import WitWorld  # noqa: F401  (the component's export)


@rill_guest.function("py::test::write_then_raise")
def write_then_raise(payload):
    with rill_guest.open_writer(payload["writer"]) as writer:
        writer.write(b"x" * payload["bytes"])
        raise RuntimeError("told to fail midway")
