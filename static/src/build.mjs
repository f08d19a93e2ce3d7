// Builds the viewer into static/dist/ (git-ignored; `npm run build`, run by scripts/setup):
//   viewer.js                  the viewer, one minified ES module (Cornerstone3D included)
//   review.js                  the read-only review viewer (static/src/review), its own bundle
//   decodeImageFrameWorker.js  the DICOM image loader's decode worker, its own entry, named so
//                              that the loader's `new URL("./decodeImageFrameWorker.js",
//                              import.meta.url)` finds it beside viewer.js
//   wasm/*.wasm                the decoders the worker loads from `wasmBasePath`, unhashed
// Facts behind these choices: ../shared/CORNERSTONE.md and docs/viewer.md.
import { copyFile, mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const out = path.join(root, "static/dist");
const cs = path.join(root, "node_modules/@cornerstonejs");
const stub = "./static/src/stubs/node.js";

const WASM = [
  "codec-openjpeg/dist/openjpegwasm_decode.wasm",
  "codec-charls/dist/charlswasm_decode.wasm",
  "codec-libjpeg-turbo-8bit/dist/libjpegturbowasm_decode.wasm",
  "codec-libjxl/dist/jpegxlwasm_decode.wasm",
  "codec-openjph/dist/openjphjs.wasm",
];

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, "wasm"), { recursive: true });

const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: {
    viewer: "static/src/viewer/main.js",
    review: "static/src/review/main.js", // the read-only review viewer (docs/adjudication.md)
    decodeImageFrameWorker: path.join(cs, "dicom-image-loader/dist/esm/decodeImageFrameWorker.js"),
  },
  outdir: out,
  bundle: true,
  format: "esm", // "iife" fails at load: the loader builds its worker URL from import.meta.url
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  legalComments: "linked",
  alias: { fs: stub, path: stub, url: stub, events: stub },
  define: { "process.env.NODE_ENV": '"production"' },
  metafile: true,
  logLevel: "warning",
});

for (const file of WASM) {
  await copyFile(path.join(cs, file), path.join(out, "wasm", path.basename(file)));
}

const sizes = Object.entries(result.metafile.outputs)
  .filter(([name]) => name.endsWith(".js"))
  .map(([name, o]) => `${path.relative(root, name)} ${(o.bytes / 1e6).toFixed(2)} MB`);
const wasm = await Promise.all(WASM.map((f) => stat(path.join(out, "wasm", path.basename(f)))));
console.log(`built ${sizes.join(", ")}; ${WASM.length} wasm files ${(wasm.reduce((s, w) => s + w.size, 0) / 1e6).toFixed(2)} MB`);
