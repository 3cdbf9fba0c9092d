"""An iii SDK worker (PyPI iii-sdk 0.25.0) streams a file into rill's wasm `files::process`.

    rill serve &                       # listens on ws://127.0.0.1:49134
    III_URL=ws://127.0.0.1:49134 OTEL_ENABLED=false python examples/iii/files_process.py FILE

Prints the function's result, {"bytes": …, "sha256": …}; compare with `sha256sum FILE`.
"""

import asyncio
import os
import sys

from iii import InitOptions, register_worker
from iii.helpers import create_channel_async

iii = register_worker(os.environ.get("III_URL", "ws://127.0.0.1:49134"), InitOptions(worker_name="files-example"))


async def main(path: str) -> None:
    channel = await create_channel_async(iii)
    call = asyncio.create_task(
        iii.trigger_async({"function_id": "files::process", "payload": {"reader": channel.reader_ref.model_dump()}})
    )
    with open(path, "rb") as file:
        while chunk := file.read(64 * 1024):
            await channel.writer.write(chunk)
    await channel.writer.close_async()
    print(await call)


asyncio.run(main(sys.argv[1]))
iii.shutdown()
