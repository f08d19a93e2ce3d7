"""Benchmark: our access-checked DICOMweb against Orthanc's DICOMweb plugin, same instances.

Run from the repository root::

    .venv/bin/python bench/serve.py [--seconds 10] [--rounds 2] [--connections 16]

Everything runs on loopback in one throw-away folder:

- **our site**: a SQLite database and media root, one reader, one phantom case ingested through
  the de-identifying ingest, and ``gunicorn -c vbqweb/gunicorn_conf.py`` (2 gthread workers x 8
  threads, DEBUG off), the production configuration; every request carries the reader's
  session cookie, so the access check runs (``readers.access``, plus the session, MFA and
  session-limit middleware).
- **Orthanc** (Debian's ``/usr/sbin/Orthanc``, with ``libOrthancDicomWeb.so``), its own
  configuration, storage and index in the folder, HTTP on a loopback port, no DICOM port, no
  authentication; the very same de-identified files are uploaded through its REST API
  (``POST /instances``), so both serve the same UIDs and bytes.

Both are driven by ``wrk`` (``--connections`` connections, 2 threads, a Lua script that walks
the series' instances round-robin and sets the headers), for ``--seconds`` each, interleaved
(Orthanc, ours, Orthanc, ours ... per kind and round) after a short warm-up of each, so that a
slow phase of the machine hits both. Kinds:

- ``instance``: WADO-RS instance, ``Accept: multipart/related; type="application/dicom"``;
- ``frame``: WADO-RS frame 1, ``multipart/related; type="application/octet-stream";
  transfer-syntax=*`` (what Cornerstone's ``wadors`` loader asks);
- ``metadata``: WADO-RS instance metadata, ``application/dicom+json``.

Printed: req/s and p95 latency of each, best round, and the ratio ours / Orthanc (req/s). Every
answer's status is checked by the Lua script (non-2xx are counted and reported).

Not a test: figures depend on the machine; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ACCEPT = {
    "instance": 'multipart/related; type="application/dicom"',
    "frame": 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    "metadata": "application/dicom+json",
}

# wrk: round-robin over the paths in PATHS_FILE (one a line), headers from HEADERS_FILE
# ("Name: value" lines); at the end one JSON line with the figures.
LUA = r"""
local paths = {}
local headers = {}
local counter = 0
local non2xx = 0
for line in io.lines(os.getenv("VBQ_PATHS")) do paths[#paths + 1] = line end
for line in io.lines(os.getenv("VBQ_HEADERS")) do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1], headers)
end
response = function(status, hdrs, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, ' ..
    '"errors": %d, "bytes": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.status + summary.errors.timeout, summary.bytes))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http_status(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0


def _wait(port: int, path: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _http_status(port, path) == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start")


def _set_up(work: Path) -> dict[str, Any]:
    """Database, reader, one phantom case through the ingest; the reader's session cookie."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from studies import services as study_services
    from studies.models import Case, Role
    from studies.phantom.writer import write_phantom
    from studies.uploads.ingest import case_set_ingest_paths

    call_command("migrate", verbosity=0)
    reader = get_user_model().objects.create_user("bench-reader", password="bench-password-1")
    study = study_services.study_create(name="Bench")
    study_services.assignment_set(study=study, user=reader, role=Role.READER)
    case_dir = write_phantom(work / "phantom", cases=1, seed=2026)[0]
    case_set_ingest_paths(study=study, paths=sorted(case_dir.glob("*.dcm")), name="bench")
    case = Case.objects.get(study=study)
    series = case.reading_series
    instances = list(series.instances.order_by("instance_number"))
    client = Client()
    client.force_login(reader)
    base = f"studies/{case.study_instance_uid}/series/{series.series_instance_uid}"
    cookie_name = settings.SESSION_COOKIE_NAME
    return {
        "cookie": f"{cookie_name}={client.cookies[cookie_name].value}",
        "files": [instance.file.path for instance in instances],
        "paths": {
            "instance": [f"{base}/instances/{i.sop_instance_uid}" for i in instances],
            "frame": [f"{base}/instances/{i.sop_instance_uid}/frames/1" for i in instances],
            "metadata": [f"{base}/instances/{i.sop_instance_uid}/metadata" for i in instances],
        },
        "n_instances": len(instances),
        "instance_bytes": sum(i.size for i in instances),
        "rows": instances[0].rows,
    }


def _start_orthanc(work: Path, port: int, files: list[str]) -> subprocess.Popen[bytes]:
    folder = work / "orthanc"
    folder.mkdir()
    config = {
        "Name": "vbq-bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "HttpServerEnabled": True,
        "HttpCompressionEnabled": False,
        "KeepAlive": True,
        "HttpThreadsCount": 50,
        "StorageCompression": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 (kept open for the process)
    process = subprocess.Popen(
        [ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
    )
    _wait(port, "/system", "Orthanc")
    for name in files:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/instances", body=Path(name).read_bytes())
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"Orthanc refused {name}: HTTP {response.status}")
    return process


def _wrk(
    work: Path, port: int, root: str, kind: str, paths: list[str], headers: dict[str, str],
    seconds: float, connections: int,
) -> dict[str, Any]:  # fmt: skip
    paths_file = work / f"paths-{port}-{kind}.txt"
    paths_file.write_text("".join(f"{root}{p}\n" for p in paths), encoding="utf-8")
    headers_file = work / f"headers-{port}-{kind}.txt"
    headers_file.write_text("".join(f"{k}: {v}\n" for k, v in headers.items()), encoding="utf-8")
    script = work / "round_robin.lua"
    if not script.exists():
        script.write_text(LUA, encoding="utf-8")
    output = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}"],
        env={**os.environ, "VBQ_PATHS": str(paths_file), "VBQ_HEADERS": str(headers_file)},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = [x for x in output.splitlines() if x.startswith('{"requests"')][-1]
    figures = json.loads(line)
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per kind")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--kinds", default="instance,frame,metadata")
    args = parser.parse_args()
    for tool in (ORTHANC, DICOMWEB_PLUGIN):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: apt-get install orthanc orthanc-dicomweb")
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="vbq-bench-serve-"))
    (work / "static").mkdir()
    ours_port, orthanc_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vbqweb.settings",
        "DJANGO_DEBUG": "0",
        "VBQ_VAR_DIR": str(work / "var"),
        "VBQ_STATIC_ROOT": str(work / "static"),
        "VBQ_LOG_LEVEL": "WARNING",
        "VBQ_BIND": f"127.0.0.1:{ours_port}",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }
    env.pop("DATABASE_URL", None)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        setup = _set_up(work)
        processes.append(_start_orthanc(work, orthanc_port, setup["files"]))
        processes.append(
            subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/gunicorn"),
                    "-c",
                    "vbqweb/gunicorn_conf.py",
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        )
        _wait(ours_port, "/healthz", "gunicorn")
        arms = {
            "orthanc": (orthanc_port, "/dicom-web/", {}),
            "ours": (ours_port, "/dicomweb/", {"Cookie": setup["cookie"]}),
        }
        for arm, (port, root, extra) in arms.items():  # each answers, before any timing
            for kind in args.kinds.split(","):
                path = root + setup["paths"][kind][0]
                status = _http_status(port, path, {**extra, "Accept": ACCEPT[kind]})
                if status != 200:
                    raise RuntimeError(f"{arm} {kind}: HTTP {status} for {path}")
        results: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for kind in args.kinds.split(","):
            for port, root, extra in arms.values():  # warm-up
                headers = {**extra, "Accept": ACCEPT[kind]}
                _wrk(work, port, root, kind, setup["paths"][kind], headers, 2, args.connections)
            for _ in range(args.rounds):
                for arm, (port, root, extra) in arms.items():
                    headers = {**extra, "Accept": ACCEPT[kind]}
                    figures = _wrk(
                        work, port, root, kind, setup["paths"][kind], headers, args.seconds,
                        args.connections,
                    )  # fmt: skip
                    results.setdefault(kind, {}).setdefault(arm, []).append(figures)
                    print(f"{kind:9} {arm:8} {figures['rps']:8.0f} req/s  "
                          f"p95 {figures['p95_ms']:6.1f} ms  errors {figures['errors']}",
                          file=sys.stderr, flush=True)  # fmt: skip
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)

    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} vCPU {platform.machine()}, "
        f"Python {platform.python_version()}",
        "series": f"{setup['n_instances']} phantom instances, {setup['rows']}² px, "
        f"{setup['instance_bytes'] / setup['n_instances'] / 1e3:.0f} kB each",
        "wrk": f"{args.connections} connections, {args.seconds:g} s, {args.rounds} rounds",
        "kinds": {},
    }
    print(f"\n{'kind':9} {'Orthanc req/s':>14} {'p95 ms':>7} {'ours req/s':>11} {'p95 ms':>7}"
          f" {'ratio':>6}")  # fmt: skip
    for kind, arms_figures in results.items():
        best = {arm: max(runs, key=lambda f: f["rps"]) for arm, runs in arms_figures.items()}
        ratio = best["ours"]["rps"] / best["orthanc"]["rps"]
        report["kinds"][kind] = {
            arm: {"rps": round(f["rps"], 1), "p95_ms": f["p95_ms"], "errors": f["errors"],
                  "all_rps": [round(r["rps"]) for r in arms_figures[arm]]}
            for arm, f in best.items()
        } | {"ratio": round(ratio, 3)}  # fmt: skip
        theirs, ours = best["orthanc"], best["ours"]
        print(f"{kind:9} {theirs['rps']:14.0f} {theirs['p95_ms']:7.1f} "
              f"{ours['rps']:11.0f} {ours['p95_ms']:7.1f} {ratio:6.2f}")  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
