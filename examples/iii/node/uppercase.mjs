// An iii SDK worker (npm iii-sdk 0.22.1) streams a file through rill's wasm
// `transform::uppercase` and back: its ChannelWriter feeds one channel, the wasm function
// reads it and writes another, and its ChannelReader takes what the wasm writer wrote.
//
//     rill serve &                       # listens on ws://127.0.0.1:49134
//     (cd examples/iii/node && npm ci)
//     III_URL=ws://127.0.0.1:49134 node examples/iii/node/uppercase.mjs IN OUT
//
// OUT is IN with ASCII letters uppercased (`LC_ALL=C tr a-z A-Z < IN` gives the same).

import { createReadStream, createWriteStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { registerWorker } from 'iii-sdk'
import { createChannel } from 'iii-sdk/helpers'

// rill closes a channel's reading socket with 1000 at the clean end and 1011 when the
// stream was aborted. iii-sdk's reader ends its stream quietly either way, so the close
// code is what tells a whole stream from a cut one.
const CLEAN_END = 1000

const [source, target] = process.argv.slice(2)
if (!source || !target) {
  console.error('usage: node uppercase.mjs IN OUT')
  process.exit(2)
}

const iii = registerWorker(process.env.III_URL ?? 'ws://127.0.0.1:49134', { workerName: 'uppercase-example' })
try {
  const into = await createChannel(iii)
  const out = await createChannel(iii)
  const call = iii.trigger({
    function_id: 'transform::uppercase',
    payload: { input: into.readerRef, output: out.writerRef },
    timeoutMs: 300_000,
  })
  // Connect the reader now, to watch its socket's close code.
  out.reader.ensureConnected()
  const closed = new Promise((resolve) => out.reader.ws.on('close', (code) => resolve(code)))
  await Promise.all([
    pipeline(createReadStream(source, { highWaterMark: 64 * 1024 }), into.writer.stream),
    pipeline(out.reader.stream, createWriteStream(target)),
  ])
  const code = await closed
  if (code !== CLEAN_END) throw new Error(`the stream was cut off (close code ${code}); ${target} is incomplete`)
  console.log(JSON.stringify(await call))
} finally {
  await iii.shutdown?.()
}
