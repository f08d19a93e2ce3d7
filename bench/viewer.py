"""Benchmark: the viewer over DICOMweb against the same bytes served as plain static files.

Run from the repository root (after ``scripts/setup``, which builds ``static/dist/``)::

    .venv/bin/python bench/viewer.py [--loads 7] [--seconds 5] [--max-requests 4000]

Everything runs on loopback in one throw-away folder: a SQLite database and media root, one
reader, one phantom case, and one ``gunicorn`` (2 gthread workers x 8 threads, the site's WSGI
app with WhiteNoise, DEBUG off) that serves both arms, so that the arms differ only in the path
the bytes take:

1. **Time to first image.** Headless Chromium (Debian's, through Playwright) opens the reader's
   case page, cold (a new browser context per load), and reports ``performance.now()`` when the
   viewer has painted its first image (``vbqViewer.firstImageAt``: navigation start to the first
   ``IMAGE_RENDERED`` with an image). The baseline is the same page (its HTML saved as a static
   file), the same bundle and the same frame bytes, with the DICOMweb root pointing at static
   copies of the series metadata and of each frame (WhiteNoise): no view, no access check, no
   DICOM parsing. Loads alternate between the arms; the figure is the median. Target: DICOMweb
   <= 1.5x the static time. A warm load (the same context again: frames cached as immutable) is
   reported too.
2. **Throughput.** 16 client threads fetch the series' instances round-robin for ``--seconds``
   (at most ``--max-requests`` in all), first from the DICOMweb instance endpoint
   (``application/dicom``, with the reader's session cookie), then as static ``.dcm`` files.
   Reported: requests/s of each and the ratio.

Not a test: timings depend on the machine; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
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
    return {
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
    }


def _first_image_times(origin: str, setup: dict, loads: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {
        "dicomweb": [],
        "static": [],
        "dicomweb warm": [],
        "static warm": [],
    }
    wait = "vbqViewer.firstImageAt !== null || document.body.dataset.viewerError"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for k in range(loads + 1):  # the first round warms the server and the OS caches
            for arm, path in (("dicomweb", setup["page"]), ("static", setup["static_page"]))[
                :: 1 if k % 2 else -1
            ]:
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_cookies(
                    [
                        {
                            "name": setup["session_cookie_name"],
                            "value": setup["cookie"],
                            "url": origin,
                        }
                    ]
                )
                page = context.new_page()
                for warm in (False, True):
                    page.goto(origin + path)
                    page.wait_for_function(wait, timeout=30_000)
                    error = page.evaluate("document.body.dataset.viewerError")
                    if error:
                        raise RuntimeError(f"{arm}: the viewer failed: {error}")
                    if k:
                        times[arm + (" warm" if warm else "")].append(
                            page.evaluate("vbqViewer.firstImageAt")
                        )
                context.close()
        browser.close()
    return times


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

        times = _first_image_times(origin, setup, args.loads)
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
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} vCPU {platform.machine()}, "
        f"Python {platform.python_version()}",
        "series": f"{setup['n_instances']} phantom instances, {setup['rows']}² px, "
        f"{setup['instance_bytes'] / 1e6:.1f} MB",
        "first_image_ms": {arm: round(v, 1) for arm, v in med.items()},
        "first_image_all_ms": {arm: [round(x) for x in v] for arm, v in times.items()},
        "first_image_ratio": round(med["dicomweb"] / med["static"], 3),
        "first_image_ratio_warm": round(med["dicomweb warm"] / med["static warm"], 3),
        "throughput": {
            "dicomweb": {k: round(v, 1) for k, v in dicomweb.items()},
            "static": {k: round(v, 1) for k, v in static.items()},
            "ratio": round(dicomweb["rps"] / static["rps"], 3),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
