// Browser stand-ins for the Node built-ins that reach the bundle: `fs` and `path` from the
// codecs' Emscripten glue (only used under Node) and `url`, `events` from vtk.js's XML reader
// (not used by the viewer). Marking them external builds but fails at run time ("Dynamic
// require of 'url' is not supported"), so esbuild aliases them here (see build.mjs).
export class EventEmitter {
  constructor() {
    this.listeners = new Map();
  }
  on(name, fn) {
    this.listeners.set(name, [...(this.listeners.get(name) || []), fn]);
    return this;
  }
  off(name, fn) {
    this.listeners.set(name, (this.listeners.get(name) || []).filter((f) => f !== fn));
    return this;
  }
  emit(name, ...args) {
    for (const fn of this.listeners.get(name) || []) fn(...args);
    return true;
  }
}
const unavailable = () => {
  throw new Error("not available in the browser");
};
export const readFileSync = unavailable;
export const readFile = unavailable;
export const existsSync = () => false;
export const join = (...parts) => parts.join("/");
export const resolve = (...parts) => parts.join("/");
export const dirname = (p) => String(p).replace(/\/[^/]*$/, "");
export const normalize = (p) => p;
export const sep = "/";
export const fileURLToPath = (u) => String(u);
export const pathToFileURL = (p) => new URL(p, "file:///");
export const parse = (u) => new URL(u);
export const URL = globalThis.URL;
export default {
  EventEmitter,
  readFileSync,
  readFile,
  existsSync,
  join,
  resolve,
  dirname,
  normalize,
  sep,
  fileURLToPath,
  pathToFileURL,
  parse,
  URL,
};
