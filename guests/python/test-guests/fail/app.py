"""Python failing on purpose; each failure must reach the next reader as aborted with
the exception, never as a clean end.

- `py::test::write_then_raise`: writes ``bytes`` bytes to the writer ref at ``writer``,
  then raises.
- `py::test::transform_then_raise`: a pipeline stage (payload ``{"input": <read ref>,
  "output": <write ref>, "after"?: N}``) that uppercases ``input`` into ``output`` like
  `py::transform::uppercase` until it has passed on at least ``after`` bytes (default
  65536), then raises.
"""

import rill_guest
from rill_guest import WitWorld  # noqa: F401  (the component's export)


@rill_guest.function("py::test::write_then_raise")
def write_then_raise(payload):
    with rill_guest.open_writer(payload["writer"]) as writer:
        writer.write(b"x" * payload["bytes"])
        raise RuntimeError("told to fail midway")


@rill_guest.function("py::test::transform_then_raise")
def transform_then_raise(payload):
    after = payload.get("after", 65536)
    passed = 0
    with rill_guest.open_reader(payload["input"]) as source, rill_guest.open_writer(payload["output"]) as sink:
        for chunk in source:
            sink.write(chunk.upper())
            passed += len(chunk)
            if passed >= after:
                raise RuntimeError("python stage failed on purpose")
    return {"bytes": passed}
