// rill-build's JavaScript build step (embedded in rill-build, written into each build's
// work directory and run there by Node):
//
//   node build.mjs <toolchain dir> <app dir> <sdk dir> <wit dir> <world> <out.wasm>
//
// The toolchain directory is `<cache>/toolchains/componentize-js-<version>`, installed
// with `npm ci` from the package.json and package-lock.json beside this file; the tools
// are loaded from its node_modules.
//
// 1. esbuild bundles the app into one ES module: an entry that imports the app's
//    `app.js` (which registers its handlers) and re-exports the SDK's `handle`, with the
//    bare specifier `rill-guest` resolved to the SDK and the WIT imports
//    (`rill:host/...`) left for componentize-js to bind.
// 2. componentize-js (StarlingMonkey) turns that module into a component of the world,
//    without the HTTP features rill does not link (they would import wasi:http).
//
// Errors go to stderr and the exit status is non-zero; stdout is not used.

import { readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
if (args.length !== 6) {
  console.error("usage: node build.mjs <toolchain dir> <app dir> <sdk dir> <wit dir> <world> <out.wasm>");
  process.exit(2);
}
const [toolchain, appDir, sdkDir, witDir] = args.slice(0, 4).map((arg) => resolve(arg));
const [worldName, out] = [args[4], resolve(args[5])];

const modules = join(toolchain, "node_modules");
const { build } = createRequire(join(toolchain, "package.json"))("esbuild");
const componentizeDir = join(modules, "@bytecodealliance", "componentize-js");
const componentizeMain = JSON.parse(await readFile(join(componentizeDir, "package.json"), "utf8")).exports.import;
const { componentize } = await import(pathToFileURL(join(componentizeDir, componentizeMain)).href);

const entry = join(appDir, "..", "entry.js");
await writeFile(entry, `import ${JSON.stringify(join(appDir, "app.js"))};\nexport { handle } from "rill-guest";\n`);
const bundle = join(appDir, "..", "bundle.js");
try {
  await build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    keepNames: true,
    logLevel: "warning",
    alias: { "rill-guest": join(sdkDir, "index.js") },
    external: ["rill:host/*"],
  });
} catch {
  process.exit(1); // esbuild printed its errors
}

try {
  const { component } = await componentize({
    sourcePath: bundle,
    witPath: witDir,
    worldName,
    disableFeatures: ["http", "fetch-event"],
  });
  await writeFile(out, component);
} catch (err) {
  console.error(`componentize-js: ${err?.stack ?? err}`);
  process.exit(1);
}
