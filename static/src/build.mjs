// Builds the viewer into static/dist/ (git-ignored; `npm run build`, run by scripts/setup).
// ES modules split into shared chunks (issue 15 item 4: a faster first image):
//   viewer.js                  the reader's viewer entry, small (the page's own modules): it
//                              asks for the series' metadata, imports cornerstone.js (the core
//                              and the image loader) dynamically at once, and the tools and the
//                              annotation bridge once the first image is shown
//   review.js                  the read-only review viewer (static/src/review), its own entry
//   chunks/*-[hash].js         code shared between the entries, and the dynamically imported
//                              parts (cornerstone.js, Cornerstone's tools, each codec's glue);
//                              content-hashed names, imported by relative URL
//   decodeImageFrameWorker.js  the DICOM image loader's decode worker, its own entry, named so
//                              that the loader's `new URL("./decodeImageFrameWorker.js",
//                              import.meta.url)` would find it; the viewer registers it by URL
//   wasm/*.wasm                the decoders the worker loads from `wasmBasePath`, unhashed
// Codecs on demand: each codec's Emscripten glue is imported statically by the loader's decoders;
// the `lazyCodecs` plugin below turns each into a dynamic import, so the worker fetches a codec
// (glue, then its wasm) only when a compressed transfer syntax is met. Our instances are mostly
// native Explicit VR Little Endian, which needs none.
// Compressed: every .js, .wasm and .txt output gets a .br and a .gz copy beside it, which
// WhiteNoise serves to browsers that accept them (collectstatic makes them again for production).
// Facts behind these choices: ../shared/CORNERSTONE.md and docs/viewer.md.
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import zlib from "node:zlib";
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

// The codecs' Emscripten glue modules, as the loader's decoders import them.
const CODEC_GLUE = /^@cornerstonejs\/codec-[\w-]+\/(decodewasmjs|wasmjs)$/;

/** Each codec's glue becomes a stand-in whose default export (the Emscripten factory, which
 *  returns a promise of the module) imports the real glue first: a chunk of its own, fetched
 *  only when that decoder is initialised. */
const lazyCodecs = {
  name: "lazy-codecs",
  setup(build) {
    build.onResolve({ filter: CODEC_GLUE }, (args) =>
      args.namespace === "lazy-codec" ? undefined : { path: args.path, namespace: "lazy-codec" },
    );
    build.onLoad({ filter: /.*/, namespace: "lazy-codec" }, (args) => ({
      contents: `export default (options) => import(${JSON.stringify(args.path)}).then((m) => m.default(options));`,
      resolveDir: path.join(cs, "dicom-image-loader"),
    }));
  },
};

/** The image loader's package declares no `sideEffects`, so its index (which re-exports every
 *  decoder and the worker's own module) would pull all of them into the page. Its modules have
 *  no import-time effects the page relies on (init() registers the loaders), so they are marked
 *  side-effect free: the page keeps what it imports (`init`, `wadors`) and what that uses. */
const loaderTreeShaking = {
  name: "loader-tree-shaking",
  setup(build) {
    const inLoader = (file) => file.startsWith(path.join(cs, "dicom-image-loader") + path.sep);
    build.onResolve({ filter: /.*/ }, async (args) => {
      const ours = inLoader(args.importer) || args.path === "@cornerstonejs/dicom-image-loader";
      if (args.pluginData?.loaderTreeShaking || !ours) return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        namespace: args.namespace,
        pluginData: { loaderTreeShaking: true },
      });
      if (resolved.errors.length) return { errors: resolved.errors };
      return inLoader(resolved.path) ? { ...resolved, sideEffects: false } : undefined;
    });
  },
};

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, "wasm"), { recursive: true });

// Two builds into one folder: the pages (sharing chunks between them), and the decode worker,
// which shares nothing with them (a page must not evaluate the worker's module: it would expose
// the decoder on the window), split only for its lazily imported codecs.
const common = {
  absWorkingDir: root,
  outdir: out,
  bundle: true,
  format: "esm", // "iife" fails at load: the loader builds its worker URL from import.meta.url
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  legalComments: "linked",
  alias: { fs: stub, path: stub, url: stub, events: stub },
  define: { "process.env.NODE_ENV": '"production"' },
  plugins: [lazyCodecs, loaderTreeShaking],
  metafile: true,
  logLevel: "warning",
};
const pages = await esbuild.build({
  ...common,
  entryPoints: {
    viewer: "static/src/viewer/main.js",
    review: "static/src/review/main.js", // the read-only review viewer (docs/adjudication.md)
  },
});
const worker = await esbuild.build({
  ...common,
  entryPoints: {
    decodeImageFrameWorker: path.join(cs, "dicom-image-loader/dist/esm/decodeImageFrameWorker.js"),
  },
});

// The pages' build also writes a chunk for each codec (esbuild makes one for every dynamic
// import it meets, even in code it then tree-shakes away): nothing in the pages imports them,
// the worker has its own. Removed, so that static/dist holds only what is loaded.
const reachable = new Set();
const reach = (name) => {
  if (reachable.has(name)) return;
  reachable.add(name);
  for (const i of pages.metafile.outputs[name].imports) if (!i.external) reach(i.path);
};
for (const entry of ["viewer", "review"]) reach(`static/dist/${entry}.js`);
for (const name of Object.keys(pages.metafile.outputs)) {
  if (reachable.has(name) || !name.endsWith(".js")) continue;
  await rm(path.resolve(root, name));
  await rm(path.resolve(root, `${name}.LEGAL.txt`), { force: true });
  delete pages.metafile.outputs[name];
}

for (const file of WASM) {
  await copyFile(path.join(cs, file), path.join(out, "wasm", path.basename(file)));
}

// Pre-compressed copies, at the highest levels (built once, served many times).
const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
async function* files(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(file);
    else if (/\.(js|wasm|txt)$/.test(entry.name)) yield file;
  }
}
const compressed = [];
for await (const file of files(out)) {
  compressed.push(
    readFile(file).then((data) =>
      Promise.all([
        brotli(data, {
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
          },
        }).then((br) => writeFile(`${file}.br`, br)),
        gzip(data, { level: 9 }).then((gz) => writeFile(`${file}.gz`, gz)),
      ]),
    ),
  );
}
await Promise.all(compressed);

// What the first image loads: the viewer entry, cornerstone.js (which the entry imports
// dynamically at once), the decode worker and the chunks they import statically (not the tools,
// nor the codecs), measured raw and as brotli.
const outputs = { ...pages.metafile.outputs, ...worker.metafile.outputs };
const firstPath = new Set();
const visit = (name) => {
  if (firstPath.has(name)) return;
  firstPath.add(name);
  for (const i of outputs[name].imports) if (i.kind === "import-statement") visit(i.path);
};
visit("static/dist/viewer.js");
visit("static/dist/decodeImageFrameWorker.js");
visit(Object.keys(outputs).find((name) => outputs[name].entryPoint === "static/src/viewer/cornerstone.js"));
const sizeOf = async (name) => {
  const file = path.resolve(root, name);
  return [(await stat(file)).size, (await stat(`${file}.br`)).size];
};
const first = await Promise.all([...firstPath].map(sizeOf));
const js = Object.keys(outputs).filter((n) => n.endsWith(".js"));
const mb = (n) => `${(n / 1e6).toFixed(2)} MB`;
console.log(
  `built ${js.length} js files (${mb(js.reduce((s, n) => s + outputs[n].bytes, 0))}), ${WASM.length} wasm; ` +
    `the viewer's first image loads ${firstPath.size} of them: ${mb(first.reduce((s, [raw]) => s + raw, 0))}, ` +
    `${mb(first.reduce((s, [, br]) => s + br, 0))} as brotli`,
);
