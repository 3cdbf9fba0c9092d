"""Channel refs in iii's JSON shape, as plain dicts: ``{"channel_id": str, "access_key":
str, "direction": "read" | "write"}``, exactly those three keys. The rule, and the cases
every rill SDK is tested against, are ``protocol/conformance/refs.json``.
"""

from __future__ import annotations

from typing import Any, Iterator

REF_KEYS = frozenset(("channel_id", "access_key", "direction"))
DIRECTIONS = ("read", "write")


def is_channel_ref(value: Any) -> bool:
    """Whether ``value`` is a channel ref: a dict with exactly the ref's keys, two
    strings and a lowercase direction."""
    return (
        isinstance(value, dict)
        and value.keys() == REF_KEYS
        and isinstance(value["channel_id"], str)
        and isinstance(value["access_key"], str)
        and value["direction"] in DIRECTIONS
    )


def parse_channel_ref(value: Any) -> dict[str, str]:
    """``value`` as a ref (a new dict), or ``ValueError`` saying why it is not one."""
    if not is_channel_ref(value):
        raise ValueError(
            "not a channel ref: expected exactly channel_id (string), access_key (string) "
            f'and direction ("read" or "write"), got {_shape(value)}'
        )
    return {"channel_id": value["channel_id"], "access_key": value["access_key"], "direction": value["direction"]}


def extract_channel_refs(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, str]]]:
    """Every ref inside a JSON value, with its dotted path (``"job.reader"``; list
    items as ``"items[0]"``), as iii's SDKs find them."""
    if is_channel_ref(value):
        yield path, dict(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from extract_channel_refs(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from extract_channel_refs(item, f"{path}[{index}]")


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "an object with keys " + ", ".join(sorted(map(str, value.keys())))
    return type(value).__name__
