"""`py::files::process`: Python's twin of the Rust `files::process`.

Payload: ``{"filename"?: str, "reader": <read ref>}`` (the ref may sit deeper, at any
path ending in ``reader``). Result: ``{"bytes": N, "sha256": "<hex>", "messages": K}``,
K counting the text messages met on the way.
"""

import hashlib

import rill_guest
from rill_guest import WitWorld  # noqa: F401  (the component's export)


@rill_guest.function("py::files::process")
def process(payload):
    ref = next(
        (ref for path, ref in rill_guest.extract_channel_refs(payload)
         if (path == "reader" or path.endswith(".reader")) and ref["direction"] == "read"),
        None,
    )
    if ref is None:
        raise ValueError("missing reader channel ref")
    digest, size, messages = hashlib.sha256(), 0, 0
    with rill_guest.open_reader(ref) as reader:
        for item in reader.items():
            if isinstance(item, str):
                messages += 1
            else:
                digest.update(item)
                size += len(item)
    return {"bytes": size, "sha256": digest.hexdigest(), "messages": messages}
