"""Benchmark: the viewer's first image against a minimal Cornerstone3D page, and over DICOMweb
against the same bytes served as plain static files.

Run from the repository root (after ``scripts/setup``, which builds ``static/dist/``)::

    .venv/bin/python bench/viewer.py [--loads 7] [--seconds 5] [--max-requests 4000]

Everything runs on loopback in one throw-away folder: a SQLite database and media root, one
reader, one phantom case, and one ``gunicorn`` (2 gthread workers x 8 threads, the site's WSGI
app with WhiteNoise, DEBUG off, static files collected compressed as in the demo) that serves
every arm, so that the arms differ only in the code and the path the bytes take:

1. **Time to first image.** Headless Chromium (Debian's, through Playwright) opens each arm's
   page cold (a new browser context per load) and reports ``performance.now()`` when the first
   image is painted (navigation start to the first ``IMAGE_RENDERED`` with an image). Arms:

   - ``dicomweb``: the reader's page (``vbqViewer.firstImageAt``), access-checked WADO-RS;
   - ``static``: the same page HTML and bundle with the DICOMweb root pointing at static copies
     of the series metadata and of each frame (no view, no access check, no DICOM parsing);
   - ``minimal``: a minimal Cornerstone3D page (core + DICOM image loader, one stack viewport,
     the loader's own worker, built here by esbuild as one minified ES module the way the
     Cornerstone docs set it up), over the same static copies: one metadata request, the
     middle slice shown. This is the floor our viewer is measured against (issue 15 item 4:
     target ``dicomweb`` / ``minimal`` <= 1.2, cold).

   Loads rotate the arms' order; the figure is the median. A warm load (the same context
   again) is reported too, and for our viewer the time the page is ready (tools wired:
   ``vbqViewer.readyAt``; they load after the first image). For the last cold load of each arm,
   the bytes the first image path transferred (everything that finished before the first
   image), by kind, with the ``Content-Encoding`` each kind was served with.
2. **Throughput.** 16 client threads fetch the series' instances round-robin for ``--seconds``
   (at most ``--max-requests`` in all), first from the DICOMweb instance endpoint
   (``application/dicom``, with the reader's session cookie), then as static ``.dcm`` files.
   Reported: requests/s of each and the ratio.

Not a test: timings depend on the machine; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The minimal Cornerstone3D page: the core, the DICOM image loader with its own worker (as
# init() makes it), one stack viewport, the series' metadata in one request, the middle slice.
MINIMAL_JS = """
import { Enums, RenderingEngine, init as coreInit } from "@cornerstonejs/core";
import { init as loaderInit, wadors } from "@cornerstonejs/dicom-image-loader";

const config = JSON.parse(document.getElementById("config").textContent);
window.firstImageAt = null;
async function start() {
  const metadata = fetch(`${config.base}/metadata`).then((r) => r.json());
  await coreInit();
  loaderInit({ wasmBasePath: config.wasm });
  const tag = (json, t) => json[t]?.Value?.[0];
  const instances = (await metadata).sort((a, b) => tag(a, "00200013") - tag(b, "00200013"));
  const imageIds = instances.map((json) => {
    const imageId = `wadors:${config.base}/instances/${tag(json, "00080018")}/frames/1`;
    wadors.metaDataManager.add(imageId, json);
    return imageId;
  });
  const element = document.getElementById("viewport");
  const size = new URLSearchParams(location.search); // our viewer's viewport, measured by the bench
  element.style.width = `${size.get("w") || 800}px`;
  element.style.height = `${size.get("h") || 700}px`;
  const engine = new RenderingEngine("minimal");
  engine.enableElement({ viewportId: "stack", type: Enums.ViewportType.STACK, element });
  const viewport = engine.getViewport("stack");
  element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
    if (window.firstImageAt === null && viewport.getCornerstoneImage()) {
      window.firstImageAt = performance.now();
    }
  });
  await viewport.setStack(imageIds, Math.floor((imageIds.length - 1) / 2));
  viewport.render();
}
start().catch((error) => (document.body.dataset.viewerError = String(error.message || error)));
"""

MINIMAL_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Minimal Cornerstone3D</title>
<script id="config" type="application/json">{config}</script>
<script type="module" src="minimal.js"></script></head>
<body style="margin:0"><div id="viewport"></div></body></html>
"""


def _build_minimal(target: Path) -> dict:
    """The minimal page's bundle and worker, by esbuild with the viewer's settings (one minified
    ES module each, the same Node stubs), into ``target``; their sizes."""
    target.mkdir(parents=True, exist_ok=True)
    entry = target.parent / "minimal-src" / "minimal.js"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(MINIMAL_JS, encoding="utf-8")
    stub = ROOT / "static/src/stubs/node.js"
    worker = (
        ROOT / "node_modules/@cornerstonejs/dicom-image-loader/dist/esm/decodeImageFrameWorker.js"
    )
    subprocess.run(
        [str(ROOT / "node_modules/.bin/esbuild"), f"minimal={entry}",
         f"decodeImageFrameWorker={worker}", "--bundle", "--format=esm", "--minify",
         "--platform=browser", "--target=chrome110,firefox115,safari16", "--log-level=error",
         "--define:process.env.NODE_ENV=\"production\"", f"--outdir={target}",
         *[f"--alias:{name}={stub}" for name in ("fs", "path", "url", "events")]],
        check=True,
        env={**os.environ, "NODE_PATH": str(ROOT / "node_modules")},
    )  # fmt: skip
    return {f.name: f.stat().st_size for f in sorted(target.glob("*.js"))}


def _set_up(work: Path, port: int) -> dict:
    """Database, reader, phantom case; then the static copies, made in-process with Django's
    test client through the very views the server will run."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from readers import services
    from studies import services as study_services
    from studies.models import Case, Role
    from studies.phantom.writer import write_phantom
    from studies.uploads.ingest import case_set_ingest_paths

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    reader = get_user_model().objects.create_user("bench-reader", password="bench-password-1")
    study = study_services.study_create(name="Bench")
    study_services.assignment_set(study=study, user=reader, role=Role.READER)
    case_dir = write_phantom(work / "phantom", cases=1, seed=2026)[0]
    case_set_ingest_paths(study=study, paths=sorted(case_dir.glob("*.dcm")), name="bench")
    case = Case.objects.get(study=study)
    reading = services.reading_open(reader=reader, case=case, session=1)
    series = case.reading_series
    instances = list(series.instances.order_by("instance_number"))

    client = Client()
    client.force_login(reader)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    origin = f"http://127.0.0.1:{port}"

    # The page, with its DICOMweb root moved to static copies.
    html = client.get(f"/readings/{reading.public_id}/").content.decode()
    start = html.index('<script id="viewer-config" type="application/json">') + 51
    end = html.index("</script>", start)
    config = json.loads(html[start:end])
    static_bench = Path(settings.STATIC_ROOT) / "bench"
    config["dicomweb"]["root"] = f"{origin}/static/bench/dicomweb"
    config["urls"]["wasm"] = f"{origin}/static/dist/wasm/"
    static_html = html[:start] + json.dumps(config).replace("</", "<\\/") + html[end:]
    static_bench.mkdir(parents=True, exist_ok=True)
    (static_bench / "viewer.html").write_text(static_html, encoding="utf-8")

    base = f"/dicomweb/studies/{case.study_instance_uid}/series/{series.series_instance_uid}"
    target = static_bench / "dicomweb" / base.removeprefix("/dicomweb/")
    target.mkdir(parents=True)
    (target / "metadata").write_bytes(client.get(f"{base}/metadata").content)
    frame_bytes = 0
    for instance in instances:
        frames = target / "instances" / instance.sop_instance_uid / "frames"
        frames.mkdir(parents=True)
        data = client.get(
            f"{base}/instances/{instance.sop_instance_uid}/frames/1",
            HTTP_ACCEPT="application/octet-stream; transfer-syntax=*",
        ).content
        (frames / "1").write_bytes(data)
        frame_bytes += len(data)
        (static_bench / "instances").mkdir(exist_ok=True)
        shutil.copy(
            instance.file.path, static_bench / "instances" / f"{instance.sop_instance_uid}.dcm"
        )
    # The minimal page over the same static copies (its viewport sized like ours at load).
    minimal = static_bench / "minimal"
    minimal_sizes = _build_minimal(minimal)
    (minimal / "index.html").write_text(
        MINIMAL_HTML.format(
            config=json.dumps(
                {"base": f"{origin}/static/bench/dicomweb{base.removeprefix('/dicomweb')}",
                 "wasm": f"{origin}/static/bench/minimal/wasm/"}
            ),
        ),
        encoding="utf-8",
    )  # fmt: skip
    shutil.copytree(ROOT / "static/dist/wasm", minimal / "wasm")
    from whitenoise.compress import Compressor  # as collectstatic compresses the site's files

    compressor = Compressor(quiet=True)
    for file in minimal.glob("*.js"):
        for _ in compressor.compress(str(file)):
            pass
    return {
        "minimal_page": "/static/bench/minimal/index.html",
        "minimal_sizes": minimal_sizes,
        "cookie": cookie,
        "page": f"/readings/{reading.public_id}/",
        "static_page": "/static/bench/viewer.html",
        "dicomweb_instances": [f"{base}/instances/{i.sop_instance_uid}" for i in instances],
        "static_instances": [
            f"/static/bench/instances/{i.sop_instance_uid}.dcm" for i in instances
        ],
        "n_instances": len(instances),
        "instance_bytes": sum(i.size for i in instances),
        "frame_bytes": frame_bytes,
        "rows": instances[0].rows,
        "session_cookie_name": settings.SESSION_COOKIE_NAME,
        "cookies": {name: morsel.value for name, morsel in client.cookies.items()},
    }


VIEWPORT_SIZE = """(() => {
  const r = document.getElementById("viewport").getBoundingClientRect();
  return { width: r.width, height: r.height };
})()"""


# What the first image path transferred, by kind of request (the last cold load of each arm).
def _kind(url: str) -> str:
    path = url.split("?")[0]
    if path.endswith(".wasm"):
        return "wasm"
    if path.endswith(".js"):
        return "js"
    if path.endswith("/metadata"):
        return "metadata"
    if "/frames/" in path:
        return "frames"
    return "page"


def _served(page, responses: list, first_at: float) -> dict:
    """Bytes on the wire (encoded bodies) and Content-Encodings, by kind, of the responses that
    had finished when the first image was painted."""
    first_epoch = page.evaluate("performance.timeOrigin") + first_at
    kinds: dict[str, dict] = {}
    for response in responses:
        timing = response.request.timing
        if timing["responseEnd"] < 0 or timing["startTime"] + timing["responseEnd"] > first_epoch:
            continue
        row = kinds.setdefault(
            _kind(response.url), {"requests": 0, "bytes": 0, "decoded_bytes": 0, "encodings": set()}
        )
        row["requests"] += 1
        row["bytes"] += response.request.sizes()["responseBodySize"]
        row["decoded_bytes"] += len(response.body())
        row["encodings"].add(response.headers.get("content-encoding", "identity"))
    return {
        kind: {**row, "encodings": sorted(row["encodings"])} for kind, row in sorted(kinds.items())
    }


def _first_image_times(origin: str, setup: dict, loads: int) -> tuple[dict, dict, dict]:
    """Cold and warm first-image times of each arm, our viewer's ready times, and what the last
    cold load of each arm transferred before its first image."""
    from playwright.sync_api import sync_playwright

    arms = {
        "dicomweb": (setup["page"], "vbqViewer.firstImageAt"),
        "static": (setup["static_page"], "vbqViewer.firstImageAt"),
        "minimal": (setup["minimal_page"], "window.firstImageAt"),
    }
    times: dict[str, list[float]] = {f"{arm}{warm}": [] for arm in arms for warm in ("", " warm")}
    ready: dict[str, list[float]] = {"dicomweb": [], "static": []}
    served: dict[str, dict] = {}
    size = None  # our viewer's viewport, which the minimal page copies
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for k in range(loads + 1):  # the first round warms the server and the OS caches
            order = list(arms)
            order = order[k % 3 :] + order[: k % 3]
            for arm in order:
                path, expression = arms[arm]
                if arm == "minimal":
                    path = f"{path}?w={size['width']:.0f}&h={size['height']:.0f}"
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                # The session, and the CSRF cookie of the page the static arm's HTML was saved
                # from (its token is in that HTML: the reading-time report on leaving uses it).
                context.add_cookies(
                    [
                        {"name": name, "value": value, "url": origin}
                        for name, value in setup["cookies"].items()
                    ]
                )
                page = context.new_page()
                responses: list = []
                page.on("response", functools.partial(_record, responses))
                for warm in (False, True):
                    responses.clear()
                    page.goto(origin + path)
                    _wait(page, f"{expression} !== null || document.body.dataset.viewerError")
                    error = page.evaluate("document.body.dataset.viewerError")
                    if error:
                        raise RuntimeError(f"{arm}: the page failed: {error}")
                    at = page.evaluate(expression)
                    if arm != "minimal":
                        _wait(page, "document.body.dataset.viewerReady === '1'")
                        if size is None:
                            size = page.evaluate(VIEWPORT_SIZE)
                    if k:
                        times[arm + (" warm" if warm else "")].append(at)
                        if arm in ready and not warm:
                            ready[arm].append(page.evaluate("vbqViewer.readyAt"))
                        if not warm:
                            served[arm] = _served(page, responses, at)
                context.close()
        browser.close()
    return times, ready, served


def _record(responses: list, response) -> None:
    responses.append(response)


def _wait(page, expression: str, timeout: float = 30.0) -> None:
    """Poll ``expression`` through the DevTools protocol (the site's policy forbids the page's
    eval, which ``page.wait_for_function`` needs)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.01)


def _throughput(
    host: str, port: int, paths: list[str], headers: dict, seconds: float, cap: int
) -> dict:
    """16 threads, keep-alive connections, round-robin over ``paths``; bounded in time and count."""
    done = 0
    failed = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        nonlocal done, failed
        conn = http.client.HTTPConnection(host, port, timeout=10)
        k = offset
        while time.monotonic() < stop:
            with lock:
                if done + failed >= cap:
                    break
            path = paths[k % len(paths)]
            k += 1
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and body[128:132] == b"DICM"
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            with lock:
                if ok:
                    done += 1
                else:
                    failed += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    return {"requests": done, "failed": failed, "seconds": elapsed, "rps": done / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=7, help="cold page loads per arm")
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput arm")
    parser.add_argument("--max-requests", type=int, default=4000, help="per throughput arm")
    args = parser.parse_args()
    if not (ROOT / "static/dist/viewer.js").exists():
        sys.exit("static/dist/viewer.js is missing: run scripts/setup (npm ci && npm run build)")

    work = Path(tempfile.mkdtemp(prefix="vbq-bench-viewer-"))
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vbqweb.settings",
        "DJANGO_DEBUG": "0",
        "VBQ_VAR_DIR": str(work / "var"),
        "VBQ_STATIC_ROOT": str(work / "static"),
        "VBQ_LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            check=True,
            env=env,
        )
        setup = _set_up(work, port)
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "vbqweb.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--worker-class", "gthread", "--threads", "8",
             "--log-level", "warning"],
            env=env,
        )  # fmt: skip
        origin = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")

        times, ready, served = _first_image_times(origin, setup, args.loads)
        cookie = {"Cookie": f"{setup['session_cookie_name']}={setup['cookie']}"}
        dicomweb = _throughput(
            "127.0.0.1", port, setup["dicomweb_instances"],
            {**cookie, "Accept": "application/dicom"}, args.seconds, args.max_requests,
        )  # fmt: skip
        static = _throughput(
            "127.0.0.1", port, setup["static_instances"], {}, args.seconds, args.max_requests
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)

    med = {arm: statistics.median(v) for arm, v in times.items()}
    dist = ROOT / "static/dist"
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} vCPU {platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}",
        "series": f"{setup['n_instances']} phantom instances, {setup['rows']}² px, "
        f"{setup['instance_bytes'] / 1e6:.1f} MB",
        "first_image_ms": {arm: round(v, 1) for arm, v in med.items()},
        "first_image_all_ms": {arm: [round(x) for x in v] for arm, v in times.items()},
        "ready_ms": {arm: round(statistics.median(v), 1) for arm, v in ready.items()},
        "first_image_ratio_vs_minimal": round(med["dicomweb"] / med["minimal"], 3),
        "first_image_ratio_vs_minimal_warm": round(med["dicomweb warm"] / med["minimal warm"], 3),
        "static_vs_minimal": round(med["static"] / med["minimal"], 3),
        "first_image_ratio": round(med["dicomweb"] / med["static"], 3),
        "first_image_ratio_warm": round(med["dicomweb warm"] / med["static warm"], 3),
        "served_before_first_image": served,
        "bundles_bytes": {
            "viewer entry": (dist / "viewer.js").stat().st_size,
            "viewer chunks": sum(f.stat().st_size for f in (dist / "chunks").glob("*.js")),
            "viewer worker": (dist / "decodeImageFrameWorker.js").stat().st_size,
            **{f"minimal {name}": size for name, size in setup["minimal_sizes"].items()},
        },
        "throughput": {
            "dicomweb": {k: round(v, 1) for k, v in dicomweb.items()},
            "static": {k: round(v, 1) for k, v in static.items()},
            "ratio": round(dicomweb["rps"] / static["rps"], 3),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
