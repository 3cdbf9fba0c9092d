"""`py::transform::uppercase`: Python's twin of the Rust `transform::uppercase`.

Payload: ``{"input": <read ref>, "output": <write ref>}``. ASCII-uppercases each byte
chunk of ``input`` into ``output``, passes text messages through in order, and closes
``output`` at the end of ``input``. If reading ``input`` fails (its writer aborted), or
anything else raises, ``output`` is aborted with the reason: its reader never takes a
cut stream for a whole one. Result: ``{"bytes": N, "messages": K}``.
"""

import rill_guest
from rill_guest import WitWorld  # noqa: F401  (the component's export)


@rill_guest.function("py::transform::uppercase")
def uppercase(payload):
    size, messages = 0, 0
    with rill_guest.open_reader(payload["input"]) as source, rill_guest.open_writer(payload["output"]) as sink:
        for item in source.items():
            if isinstance(item, str):
                sink.send_text(item)
                messages += 1
            else:
                sink.write(item.upper())
                size += len(item)
    return {"bytes": size, "messages": messages}
