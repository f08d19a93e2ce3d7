// Cornerstone3D set-up for the first image: the core and the DICOM image loader (its decode
// worker and codecs), the rendering engine with its one stack viewport. Separate because it is
// the one module that knows how Cornerstone is initialised and wired (facts:
// ../shared/CORNERSTONE.md, docs/viewer.md); it holds no state of its own: what it creates is
// returned to the caller. The tools (mouse bindings, annotations, prefetch) are in tools.js,
// which the viewer imports only once the first image is shown (issue 15 item 4): this module and
// what it imports are all that the first image waits for.
import { Enums as CoreEnums, RenderingEngine, cache, getWebWorkerManager, init as coreInit } from "@cornerstonejs/core";
// Named imports only: the build marks the loader side-effect free, so its decoders and the
// worker's own module stay out of the page (they run in the decode worker).
import { init as loaderInit, wadors } from "@cornerstonejs/dicom-image-loader";

export const VIEWPORT_ID = "vbq-stack";
export const ENGINE_ID = "vbq-engine";

/** Initialise the core and the image loader (worker at `urls.worker`, codecs at `urls.wasm`). */
export async function initCornerstone(urls) {
  await coreInit();
  // 5.14 has no webWorkerFactory: register the worker under its static URL before init().
  getWebWorkerManager().registerWorker(
    "dicomImageLoader",
    () => new Worker(urls.worker, { type: "module" }),
    { maxWorkerInstances: Math.max(1, Math.min(2, Math.floor((navigator.hardwareConcurrency || 2) / 2))) },
  );
  loaderInit({ wasmBasePath: urls.wasm, maxWebWorkers: 2 });
}

/** Give the loader each instance's WADO-RS header, so that it asks for no metadata itself. */
export function addInstanceMetadata(items) {
  for (const item of items) wadors.metaDataManager.add(item.imageId, item.json);
}

/** The rendering engine and its stack viewport on `element` (resized with the element). */
export function createViewport(element) {
  const engine = new RenderingEngine(ENGINE_ID);
  engine.enableElement({ viewportId: VIEWPORT_ID, type: CoreEnums.ViewportType.STACK, element });
  new ResizeObserver(() => engine.resize(true, true)).observe(element);
  return engine.getViewport(VIEWPORT_ID);
}

/** Listen to the viewport: `rendered` on every render, `changed` when the slice or the VOI changes. */
export function onViewportEvents(element, { rendered, changed }) {
  element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, rendered);
  element.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, changed);
  element.addEventListener(CoreEnums.Events.VOI_MODIFIED, changed);
}

/** Resolves with `performance.now()` at the first render that shows an image (the event also
 *  fires before the image exists, and when decoding fails: ../shared/CORNERSTONE.md). */
export function firstImageShown(element, viewport) {
  return new Promise((resolve) => {
    const listener = () => {
      if (!viewport.getCornerstoneImage?.()) return;
      element.removeEventListener(CoreEnums.Events.IMAGE_RENDERED, listener);
      resolve(performance.now());
    };
    element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, listener);
  });
}

/** How many of `imageIds` are decoded in Cornerstone's cache (tests: the prefetch's progress). */
export function cachedImageCount(imageIds) {
  return imageIds.filter((id) => cache.isLoaded(id)).length;
}
