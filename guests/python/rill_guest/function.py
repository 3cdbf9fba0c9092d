"""Serving calls: functions register under their ids with :func:`function`, and the
component's export, :class:`WitWorld`, hands each call to its function.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from componentize_py_types import Err

Handler = Callable[[Any], Any]

_FUNCTIONS: dict[str, Handler] = {}


def function(function_id: str) -> Callable[[Handler], Handler]:
    """Serve calls of ``function_id`` with the decorated function, which takes the
    payload (decoded JSON) and returns the result (anything ``json.dumps`` takes). An
    exception it raises fails the call with its message; the channel writers it holds
    are then aborted, so no reader takes a cut stream for a whole one."""

    def register(handler: Handler) -> Handler:
        if function_id in _FUNCTIONS:
            raise ValueError(f"{function_id!r} is registered twice")
        _FUNCTIONS[function_id] = handler
        return handler

    return register


class WitWorld:
    """The component's export (componentize-py looks for this name in the app module:
    ``from rill_guest import WitWorld`` there)."""

    def handle(self, function_id: str, payload_json: str) -> str:
        handler = _FUNCTIONS.get(function_id)
        if handler is None:
            served = ", ".join(sorted(_FUNCTIONS)) or "nothing"
            raise Err(f"this component does not serve {function_id!r} (it serves {served})")
        try:
            payload = json.loads(payload_json)
        except ValueError as err:
            raise Err(f"the payload is not JSON: {err}") from None
        try:
            result = handler(payload)
        except Exception as err:  # the call's failure, reported to the caller
            raise Err(f"{type(err).__name__}: {err}") from None
        try:
            return json.dumps(result)
        except (TypeError, ValueError) as err:
            raise Err(f"the result is not JSON: {err}") from None
