"""An iii SDK worker (PyPI iii-sdk 0.25.0) streams a file through rill's wasm
`transform::uppercase` and back: its writer feeds one channel, the wasm function reads
it and writes another, and its reader takes the result. Bytes only cross WebSockets.

    rill serve &                       # listens on ws://127.0.0.1:49134
    III_URL=ws://127.0.0.1:49134 OTEL_ENABLED=false python examples/iii/uppercase.py IN OUT

OUT is IN with ASCII letters uppercased (`LC_ALL=C tr a-z A-Z < IN` gives the same).
"""

import asyncio
import os
import sys

from iii import InitOptions, register_worker
from iii.helpers import create_channel_async

iii = register_worker(os.environ.get("III_URL", "ws://127.0.0.1:49134"), InitOptions(worker_name="uppercase-example"))

# rill closes a channel's reading socket with 1000 at the clean end and 1011 when the
# stream was aborted. iii-sdk 0.25's reader ends its iteration quietly either way, so the
# close code is what tells a whole stream from a cut one.
CLEAN_END = 1000


async def main(source: str, target: str) -> None:
    into = await create_channel_async(iii)
    out = await create_channel_async(iii)
    payload = {"input": into.reader_ref.model_dump(), "output": out.writer_ref.model_dump()}
    call = asyncio.create_task(
        iii.trigger_async({"function_id": "transform::uppercase", "payload": payload, "timeout_ms": 300_000})
    )

    async def feed() -> None:
        with open(source, "rb") as file:
            while chunk := file.read(64 * 1024):
                await into.writer.write(chunk)
        await into.writer.close_async()

    async def drain() -> None:
        with open(target, "wb") as file:
            async for chunk in out.reader:
                file.write(chunk)
        code = out.reader._ws.close_code if out.reader._ws is not None else None
        if code != CLEAN_END:
            raise SystemExit(f"the stream was cut off (close code {code}); {target} is incomplete")

    await asyncio.gather(feed(), drain())
    print(await call)


asyncio.run(main(sys.argv[1], sys.argv[2]))
iii.shutdown()
