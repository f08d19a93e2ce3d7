"""Load benchmark: N virtual readers doing what the viewer does, against the real site.

Run from the repository root (after ``scripts/setup``)::

    .venv/bin/python bench/load.py [--readers 50] [--duration 120] [--pace realistic|fast]
                                   [--database sqlite|postgres] [--json results.json]

Everything runs on loopback in one throw-away folder, laid out as ``scripts/demo`` runs the
site: Redis, Celery beat in its own process, one worker for ``score,analysis,dispatch``
(concurrency 4, as scripts/demo and compose) and one for ``ingest`` (at a lower CPU
priority), and gunicorn (``-c vbqweb/gunicorn_conf.py``), DEBUG off. The database is SQLite
(the demo's default) or, with ``--database postgres``, the server ``DATABASE_URL`` names or
else a throw-away cluster started with ``scripts/services.sh``, with connections kept 60 s
(``DATABASE_CONN_MAX_AGE``, as ``docker-compose.yml`` has it).

The study is seeded directly through the ORM before the clock starts: ``--cases`` phantom
cases (trusted import, as the tests do; the phantom is cached between runs; by default 40
more than each reader's share of the seeded readings, so that no reader runs out of cases
before the time is up, even at the fast pace) and ``--seed-readings`` submitted, scored
readings (750 by default: 15 of 30 cases for each of 50 readers, 30 of 45 for each of 25, each
with a real measurement), and its agreement computed once, as a study in full swing would
have it.

Each virtual reader (a thread, its own keep-alive connections and cookies) signs in through
the login form, then repeats until the time is up: the worklist, "Next case" (the open POST),
the reading page, the series metadata and every frame (DICOMweb, as the viewer's loader asks),
three autosaves (L1+L2, then L1-L4, then the CSF: the phantom's suggested ROIs moved by a few
pixels), each followed by polling the score as the viewer does (at once, asking the server to
wait for it; a pending answer asked again after 0.25 s, 0.25 s, 0.5 s, 1 s, 2 s, then every
4 s; with the ETag of the last answer), then the submit and its
score. Between two actions it waits 8-16 s (``--pace realistic``) or 0.5-1.5 s (``--pace
fast``); the wait runs from the start of the action, so a slow answer is not added to the
reader's pace. No new action starts after ``--duration`` seconds; then the workers are given
up to 60 s to finish.

Printed (and written as JSON with ``--json``):

* per request kind: count, errors, p50/p95/p99 latency;
* **save → score**: from the save's answer to the poll that shows the score of that version
  (what the reader sees), and server-side from the save's commit to the result's
  (``ReadingRevision.saved_at`` → ``VbqResult.computed_at``), p50/p95/max;
* readings submitted per minute;
* **lock waits**: time each process spent acquiring the database's write lock (SQLite:
  ``BEGIN IMMEDIATE``; PostgreSQL: statements ``FOR UPDATE``), recorded by a
  ``sitecustomize`` this script puts on the servers' ``PYTHONPATH`` (``bench/_locktimer``);
* **data check**: every acknowledged save is stored (its revision exists with the ROI labels
  sent), and every submitted reading has exactly one current result.

Not a test: the figures depend on the machine and its load; see bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv/bin"
PASSWORD = "bench-load-password-1"
PACES = {"realistic": (8.0, 16.0), "fast": (0.5, 1.5)}
POLL_DELAYS = [0.25, 0.25, 0.5, 1.0, 2.0]  # then 4 s: static/src/viewer/persistence.js
POLL_MAX = 4.0
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
THRESHOLDS = {"normal-upper": 2.8, "screening": 2.95, "osteoporosis": 3.0, "fracture": 3.05}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


# --- the servers ---------------------------------------------------------------------------


class Servers:
    """Redis, (PostgreSQL), Celery beat and workers, gunicorn: started, stopped, their logs."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.pg_dir: Path | None = None

    def start(self, name: str, argv: list[str], *, nice: int = 0) -> None:
        """Start ``argv`` in a session of its own (stopped as a group). ``nice`` lowers its CPU
        priority as scripts/demo does with ``nice``: here also through the session's autogroup
        (``/proc/PID/autogroup``), since with the kernel's autogroup scheduling (on by default)
        a process's own nice value only counts against the processes of its session."""
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.procs[name] = proc = subprocess.Popen(
            ["nice", "-n", str(nice), *argv] if nice else argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if nice:
            with contextlib.suppress(OSError):
                Path(f"/proc/{proc.pid}/autogroup").write_text(str(nice))

    def stop_all(self) -> None:
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            del self.procs[name]
        if self.pg_dir is not None:
            _services(f"postgres_stop {self.pg_dir}")

    def wait_for(self, what: str, check: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {self.work / (name + '.log')}")
            if check():
                return
            time.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {what}")


def _cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system, reaped children included) of every process on the machine,
    grouped by what it is: the benchmark's own client, the web, the Celery processes, Redis,
    PostgreSQL, and everything else (other jobs sharing the cores). Read from /proc, so the
    split of a run's CPU can be compared with the CPU the machine had."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    groups: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        seconds = sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
        if pid == me:
            group = "client (this process)"
        elif "gunicorn" in cmdline:
            group = "web (gunicorn)"
        elif "celery" in cmdline and " beat" in cmdline:
            group = "celery beat"
        elif "celery" in cmdline and "--queues ingest" in cmdline:
            group = "celery ingest worker"
        elif "celery" in cmdline:
            group = "celery score worker"
        elif "redis-server" in cmdline:
            group = "redis"
        elif "postgres" in cmdline:
            group = "postgresql"
        else:
            group = "other processes"
        groups[group] = groups.get(group, 0.0) + seconds
    return groups


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 1) for k in sorted(after)}


def _services(command: str) -> None:
    subprocess.run(["bash", "-c", f"source scripts/services.sh && {command}"], cwd=ROOT, check=True)


def _postgres(work: Path, servers: Servers) -> str:
    """A throw-away PostgreSQL cluster (scripts/services.sh) with an empty ``vbq`` database."""
    port = _free_port()
    data = Path(tempfile.mkdtemp(prefix="vbq-bench-pg-"))
    servers.pg_dir = data
    _services(f"postgres_start {port} {data}")
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "createdb", "-h", "127.0.0.1", "-p", str(port), "vbq"],
        check=True,
    )
    return f"postgres://postgres@127.0.0.1:{port}/vbq"


def _log_says(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def _http_ok(port: int) -> bool:
    try:
        answer = urllib3.request(
            "GET", f"http://127.0.0.1:{port}/healthz", timeout=1, retries=False
        )
        return answer.status == 200
    except urllib3.exceptions.HTTPError:
        return False


# --- the study -----------------------------------------------------------------------------


def _phantom(cases: int, seed: int) -> list[Path]:
    from studies.phantom.writer import write_phantom

    cache = Path(tempfile.gettempdir()) / f"vbq-bench-phantom-{cases}-{seed}"
    dirs = sorted(cache.glob("case-*"))
    if len(dirs) == cases and all((d / "truth.json").exists() for d in dirs):
        return dirs
    return write_phantom(cache, cases=cases, seed=seed)


def _moved(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The suggested ROIs as a hand would place them: a pixel or two off, slightly resized."""
    moved = json.loads(json.dumps(doc))
    for roi in moved["rois"]:
        if roi.get("shape") == "ellipse":
            roi["center"] = [round(c + rng.gauss(0, 1.0), 2) for c in roi["center"]]
            roi["radii"] = [round(r * rng.uniform(0.9, 1.05), 2) for r in roi["radii"]]
    return moved


def seed_study(*, readers: int, cases: int, seed_readings: int, seed: int) -> dict[str, Any]:
    """Users, the study, its cases and ``seed_readings`` submitted and scored readings."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.urls import reverse
    from django.utils import timezone

    from readers.analysis.services import analysis_compute
    from readers.measurement.dicomio import read_slice
    from readers.measurement.measure import ALGORITHM_VERSION, measure_vbq
    from readers.measurement.rois import parse_roi_set
    from readers.models import Reading, ReadingRevision, VbqResult
    from readers.sessions import case_order
    from studies import services as study_services
    from studies.models import Case, Role, ScoreVisibility
    from tests.helpers.factories import case_set_import_trusted_files

    dirs = _phantom(cases, seed)
    # Scores shown live: the viewer then polls until the score of its save is in, which is what
    # "save -> score as the reader sees it" measures. With the default (shown after submit) a
    # draft's poll answers "hidden" at once and would measure only the poll.
    study = study_services.study_create(
        name="Load benchmark", thresholds=THRESHOLDS, score_visibility=ScoreVisibility.LIVE
    )
    case_set_import_trusted_files(
        study=study,
        name="phantom",
        cases=[(f"Case {i:03d}", sorted(d.glob("*.dcm"))) for i, d in enumerate(dirs, 1)],
    )
    truths = {}
    for d in dirs:
        truth = json.loads((d / "truth.json").read_text())
        truths[truth["series_instance_uid"]] = truth["rois"]
    hashed = make_password(PASSWORD)
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"reader{i:02d}", password=hashed) for i in range(1, readers + 1)
    )
    for user in users:
        study_services.assignment_set(study=study, user=user, role=Role.READER)

    # Seeded readings: each reader's first cases in their own order, so "Next case" is new.
    per_reader = min(cases, -(-seed_readings // readers))
    rng = random.Random(seed)
    method = study.measurement_settings()
    images: dict[int, dict[str, Any]] = {}
    now = timezone.now()
    made = 0
    for user in users:
        for case in case_order(reader=user, study=study, session=1)[:per_reader]:
            if made >= seed_readings:
                break
            series = case.reading_series
            if case.pk not in images:
                images[case.pk] = {}
                for instance in series.instances.all():
                    with instance.file.open("rb") as fh:
                        image = read_slice(fh, name=instance.sop_instance_uid)
                    images[case.pk][image.sop_instance_uid] = image
            rois = parse_roi_set(_moved(truths[series.series_instance_uid], rng)).to_json()
            detail = measure_vbq(parse_roi_set(rois), images[case.pk], **method)
            reading = Reading.objects.create(
                reader=user,
                case=case,
                session=1,
                status=Reading.Status.SUBMITTED,
                rois=rois,
                roi_version=1,
                submitted_at=now,
            )
            ReadingRevision.objects.create(reading=reading, roi_version=1, rois=rois)
            vbq = detail.get("vbq")
            VbqResult.objects.create(
                reading=reading,
                roi_version=1,
                algorithm_version=ALGORITHM_VERSION,
                status=VbqResult.Status.OK if vbq is not None else VbqResult.Status.NOT_COMPUTED,
                vbq=vbq,
                numerator=detail.get("numerator"),
                csf_si=(detail.get("csf") or {}).get("si"),
                method=method,
                detail=detail,
            )
            made += 1
    analysis_compute(study_pk=study.pk)
    return {
        "login": reverse("login"),
        "study": study.pk,
        "usernames": [u.get_username() for u in users],
        "truths": truths,
        "cases": Case.objects.filter(study=study).count(),
        "readings": made,
    }


# --- a virtual reader ----------------------------------------------------------------------


@dataclass
class Record:
    """What every virtual reader saw, shared (appends under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    save_to_score: list[float] = field(default_factory=list)
    acknowledged: list[tuple[str, int, list[str]]] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # public ids
    not_modified: int = 0

    def add(self, kind: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.latency[kind].append(seconds)
            if error:
                self.errors[kind].append(error)


class Stop(Exception):
    """The benchmark's time is up."""


class Reader:
    """One reader's browser: keep-alive connections, cookies, the viewer's requests."""

    def __init__(self, origin: str, username: str, args: Any, record: Record, setup: dict) -> None:
        self.origin = origin
        self.username = username
        self.record = record
        self.truths = setup["truths"]
        self.study = setup["study"]
        self.login_path = setup["login"]
        self.pace = PACES[args.pace]
        self.end = args.end
        self.rng = random.Random(username)
        self.http = urllib3.HTTPConnectionPool(
            "127.0.0.1", int(origin.rsplit(":", 1)[1]), maxsize=1, timeout=60, retries=False
        )
        self.cookies: dict[str, str] = {}
        self.next_action = time.monotonic()

    # -- HTTP --

    def request(
        self, kind: str, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kw: Any
    ) -> urllib3.BaseHTTPResponse:
        headers = kw.pop("headers", {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        path = path.removeprefix(self.origin)
        began = time.monotonic()
        try:
            response = self.http.request(method, path, headers=headers, redirect=False, **kw)
        except urllib3.exceptions.HTTPError as error:
            self.record.add(kind, time.monotonic() - began, f"{type(error).__name__}: {error}")
            raise
        elapsed = time.monotonic() - began
        for header in response.headers.getlist("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        error = None
        if response.status not in expect:
            error = f"HTTP {response.status}: {response.data[:200]!r}"
        self.record.add(kind, elapsed, error)
        if error:
            raise RuntimeError(f"{kind}: {error}")
        return response

    def csrf(self) -> dict[str, str]:
        return {"X-CSRFToken": self.cookies.get("csrftoken", "")}

    def wait_turn(self) -> None:
        """The reader's pause between two actions (from the start of the previous one)."""
        now = time.monotonic()
        if now >= self.end:
            raise Stop
        self.next_action = max(self.next_action, now)
        time.sleep(max(0.0, min(self.next_action, self.end) - now))
        if time.monotonic() >= self.end:
            raise Stop
        self.next_action = time.monotonic() + self.rng.uniform(*self.pace)

    # -- the flow --

    def run(self) -> None:
        """Sign in, then read case after case until the time is up. After an error (recorded
        by ``request``) the reader starts over from the worklist, as a person would reload."""
        time.sleep(self.rng.uniform(0, self.pace[1]))  # readers do not all start at once
        signed_in = False
        while time.monotonic() < self.end:
            try:
                if not signed_in:
                    self.wait_turn()
                    self.login()
                    signed_in = True
                self.read_one_case()
            except Stop:
                return
            except (RuntimeError, urllib3.exceptions.HTTPError):
                time.sleep(1)
            except Exception as error:  # a bug of this script: say so, go on
                self.record.add("client", 0.0, f"{type(error).__name__}: {error}")
                time.sleep(1)

    def login(self) -> None:
        page = self.request("login page", "GET", self.login_path)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.data)
        assert token is not None, "no CSRF token on the login page"
        self.request(
            "login",
            "POST",
            self.login_path,
            expect=(302,),
            fields={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token.group(1).decode(),
            },
            encode_multipart=False,
        )

    def read_one_case(self) -> None:
        self.wait_turn()
        worklist = self.request("worklist", "GET", f"/studies/{self.study}/")
        opens = re.findall(rb'action="(/readings/open/\d+/\d+/)"', worklist.data)
        if not opens:
            raise Stop  # every case read
        self.wait_turn()
        opened = self.request(
            "open case", "POST", opens[0].decode(), expect=(302,), headers=self.csrf()
        )
        page = self.request("reading page", "GET", opened.headers["Location"])
        match = re.search(
            rb'<script id="viewer-config" type="application/json">(.*?)</script>', page.data, re.S
        )
        assert match is not None, "no viewer on the reading page"
        config = json.loads(match.group(1))
        self.load_series(config["dicomweb"])
        reading = config["reading"]["id"]
        urls = config["urls"]
        truth = _moved(self.truths[config["dicomweb"]["series_instance_uid"]], self.rng)
        steps = (["L1", "L2"], ["L1", "L2", "L3", "L4"], None)
        for labels in steps:
            self.wait_turn()
            doc = dict(truth)
            if labels is not None:
                doc["rois"] = [r for r in truth["rois"] if r["label"] in labels]
            self.save(reading, urls, doc)
        self.wait_turn()
        self.request(
            "submit",
            "POST",
            urls["submit"],
            body=b"{}",
            headers={
                **self.csrf(),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with self.record.lock:
            self.record.submitted.append(reading)
        self.poll(urls["score"], None)

    def load_series(self, dicomweb: dict[str, str]) -> None:
        base = (
            f"{dicomweb['root']}/studies/{dicomweb['study_instance_uid']}"
            f"/series/{dicomweb['series_instance_uid']}"
        )
        metadata = self.request(
            "series metadata",
            "GET",
            f"{base}/metadata",
            headers={"Accept": "application/dicom+json"},
        ).json()
        for instance in metadata:
            sop = instance["00080018"]["Value"][0]
            self.request(
                "frame",
                "GET",
                f"{base}/instances/{sop}/frames/1",
                headers={"Accept": FRAME_ACCEPT},
            )

    def save(self, reading: str, urls: dict[str, str], doc: dict[str, Any]) -> None:
        answer = self.request(
            "save",
            "POST",
            urls["save"],
            body=json.dumps(doc).encode(),
            headers={
                **self.csrf(),
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        ).json()
        saved = time.monotonic()
        version = answer["roi_version"]
        with self.record.lock:
            self.record.acknowledged.append((reading, version, [r["label"] for r in doc["rois"]]))
        self.poll(urls["score"], version, since=saved)

    def poll(self, url: str, version: int | None, *, since: float | None = None) -> None:
        """The viewer's polling: until the score of ``version`` (None: any) is in, or 60 s; each
        request asks the server to wait for a pending score (``?wait=1``), a pending answer is
        asked again after ``POLL_DELAYS``."""
        n, etag = 0, None
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            headers = {"If-None-Match": etag} if etag else {}
            response = self.request(
                "score poll", "GET", f"{url}?wait=1", expect=(200, 304), headers=headers
            )
            if response.status == 304:
                with self.record.lock:
                    self.record.not_modified += 1
            else:
                etag = response.headers.get("ETag")
                payload = response.json()
                if payload["status"] not in ("pending", "hidden") and (
                    version is None or payload["roi_version"] >= version
                ):
                    if since is not None:
                        with self.record.lock:
                            self.record.save_to_score.append(time.monotonic() - since)
                    return
            time.sleep(POLL_DELAYS[n] if n < len(POLL_DELAYS) else POLL_MAX)
            n += 1
        self.record.add("score poll", 0.0, f"no score within 60 s ({url}, v{version})")


# --- after the run -------------------------------------------------------------------------


def _as_pks(record: Record) -> None:
    """The viewer names a reading by its public id (a UUID, issue 12) where it once used the
    key: both are taken; the checks after the run (data, server-side latency) work on keys."""
    from readers.models import Reading

    ids = {a[0] for a in record.acknowledged} | set(record.submitted)
    public = [i for i in ids if not isinstance(i, int)]
    pks = {
        str(u): pk
        for u, pk in Reading.objects.filter(public_id__in=public).values_list("public_id", "pk")
    }
    record.acknowledged = [(pks.get(str(r), r), v, labels) for r, v, labels in record.acknowledged]
    record.submitted = [pks.get(str(r), r) for r in record.submitted]


def data_check(record: Record) -> dict[str, Any]:
    """Every acknowledged save stored; exactly one current result per submitted reading."""
    from readers.measurement.measure import ALGORITHM_VERSION
    from readers.models import Reading, ReadingRevision, VbqResult

    # The pages name readings by their public ids (issue 12); the tables by their pks.
    _as_pks(record)
    acknowledged, submitted = record.acknowledged, record.submitted
    pks = {a[0] for a in acknowledged} | set(submitted)
    revisions: dict[int, set[int]] = defaultdict(set)
    for reading, version in ReadingRevision.objects.filter(reading_id__in=pks).values_list(
        "reading_id", "roi_version"
    ):
        revisions[reading].add(version)
    return check_saves_and_results(
        acknowledged=acknowledged,
        submitted=submitted,
        readings={
            r.pk: (r.status, r.roi_version, [x["label"] for x in (r.rois or {}).get("rois", [])])
            for r in Reading.objects.filter(pk__in=pks)
        },
        revisions=revisions,
        results=list(
            VbqResult.objects.filter(
                reading_id__in=set(submitted), algorithm_version=ALGORITHM_VERSION
            ).values_list("reading_id", "roi_version")
        ),
        submitted_status=Reading.Status.SUBMITTED,
    )


def check_saves_and_results(
    *,
    acknowledged: list[tuple[int, int, list[str]]],
    submitted: list[int],
    readings: dict[int, tuple[str, int, list[str]]],
    revisions: dict[int, set[int]],
    results: list[tuple[int, int]],
    submitted_status: str = "submitted",
) -> dict[str, Any]:
    """The data check on plain data (tested in tests/bench/test_load.py).

    ``acknowledged``: (reading, ROI version, labels sent) of every save answered 200;
    ``readings``: (status, current ROI version, labels of the current set) by reading;
    ``revisions``: the ROI versions kept as revisions, by reading (autosaves a few seconds
    apart are coalesced into the latest, so a version may live on in a later revision);
    ``results``: (reading, ROI version) of the submitted readings' results.

    A save is lost when the reading's current version is older than it, when the last save
    acknowledged for a reading is not the reading's current set (nothing else writes during
    the benchmark), or when no revision at or after its version was kept.
    """
    lost = []
    last: dict[int, tuple[int, list[str]]] = {}
    for reading, version, labels in acknowledged:
        if version >= last.get(reading, (0, []))[0]:
            last[reading] = (version, labels)
        current = readings.get(reading)
        kept = revisions.get(reading, set())
        if current is None or current[1] < version or not any(v >= version for v in kept):
            lost.append([reading, version])
    for reading, (version, labels) in last.items():
        current = readings.get(reading)
        if current is not None and (current[1] != version or sorted(current[2]) != sorted(labels)):
            lost.append([reading, version])
    per_current: dict[int, int] = dict.fromkeys(submitted, 0)
    for reading, version in results:
        if reading in per_current and readings.get(reading, ("", -1, []))[1] == version:
            per_current[reading] += 1
    not_submitted = [pk for pk in submitted if readings.get(pk, ("", 0, []))[0] != submitted_status]
    return {
        "acknowledged_saves": len(acknowledged),
        "lost_saves": lost,
        "submitted_readings": len(submitted),
        "not_submitted": not_submitted,
        "without_current_result": [pk for pk, n in per_current.items() if n == 0],
        "with_several_current_results": [pk for pk, n in per_current.items() if n > 1],
        "ok": not lost and not not_submitted and all(n == 1 for n in per_current.values()),
    }


def server_side_latency(record: Record) -> list[float]:
    """Seconds from each acknowledged save's commit to its result's, from the database: the
    save records its scoring job (``score:reading:<pk>:v<version>``) in its transaction."""
    from readers.models import VbqResult
    from readers.selectors import score_job_key
    from vbqweb.models import Job

    keys = {
        score_job_key(reading_pk=a[0], roi_version=a[1]): (a[0], a[1]) for a in record.acknowledged
    }
    requested = {
        keys[key]: at
        for key, at in Job.objects.filter(key__in=list(keys)).values_list("key", "requested_at")
    }
    seconds = []
    for result in VbqResult.objects.filter(reading_id__in={k[0] for k in keys.values()}):
        at = requested.get((result.reading_id, result.roi_version))
        if at is not None:
            seconds.append((result.computed_at - at).total_seconds())
    return seconds


def lock_waits(work: Path) -> dict[str, Any]:
    """The servers' lock waits and their longest-held transactions (``bench/_locktimer``)."""
    waits, holds = [], []
    for path in work.glob("locks-*.log"):
        for line in path.read_text().splitlines():
            kind, process, seconds, *what = line.split(" ", 3)
            if kind == "wait":
                waits.append((process, float(seconds)))
            else:
                holds.append((float(seconds), process, what[0] if what else ""))
    values = [s for _, s in waits]
    longest: dict[str, list[float]] = defaultdict(list)
    for seconds, process, what in holds:
        longest[f"{process}: {what}"].append(seconds)
    return {
        "over_10ms": sum(s > 0.01 for s in values),
        "over_100ms": sum(s > 0.1 for s in values),
        "over_1s": sum(s > 1 for s in values),
        "p95_s": _pct(values, 95),
        "max_s": max(values, default=None),
        "total_s": round(sum(values), 2),
        "by_process": {
            p: round(sum(s for q, s in waits if q == p), 2) for p in sorted({q for q, _ in waits})
        },
        "held_over_50ms": {
            what: {"n": len(v), "total_s": round(sum(v), 2), "max_s": round(max(v), 3)}
            for what, v in sorted(longest.items(), key=lambda kv: -sum(kv[1]))[:8]
        },
    }


def _busy() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of reading")
    parser.add_argument("--pace", choices=sorted(PACES), default="realistic")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--cases", type=int, help="default: the seeded readings per reader + 40 still to read"
    )
    parser.add_argument("--seed-readings", type=int, default=750)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away folder")
    args = parser.parse_args()
    args.cases = args.cases or -(-args.seed_readings // args.readers) + 40

    work = Path(tempfile.mkdtemp(prefix="vbq-bench-load-"))
    web_port, redis_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vbqweb.settings",
        "DJANGO_DEBUG": "0",
        "VBQ_VAR_DIR": str(work / "var"),
        "VBQ_LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "VBQ_BIND": f"127.0.0.1:{web_port}",
        "VBQ_BENCH_LOCKS": str(work),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench/_locktimer"), str(ROOT)]),
    }
    servers = Servers(work, env)
    try:
        if args.database == "postgres":
            env["DATABASE_URL"] = os.environ.get("DATABASE_URL") or _postgres(work, servers)
            # Connections kept between requests, as docker-compose.yml runs PostgreSQL (a new
            # connection per request costs a server process each time).
            env.setdefault("DATABASE_CONN_MAX_AGE", "60")
        elif "DATABASE_URL" in env:
            del env["DATABASE_URL"]
        os.environ.clear()
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        os.chdir(ROOT)
        import django

        django.setup()
        from django.core.management import call_command

        began = time.monotonic()
        call_command("migrate", verbosity=0)
        setup = seed_study(
            readers=args.readers,
            cases=args.cases,
            seed_readings=args.seed_readings,
            seed=args.seed,
        )
        seeded_in = time.monotonic() - began
        from django.db import connections

        connections.close_all()

        servers.start(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        celery = [str(BIN / "celery"), "-A", "vbqweb"]
        servers.start(
            "beat",
            [*celery, "beat", "--schedule", str(work / "beat-schedule"), "--loglevel", "WARNING"],
        )
        servers.start(
            "worker-fast",
            [
                *celery,
                "worker",
                "--queues",
                "score,analysis,dispatch",
                "--concurrency",
                "4",
                "--loglevel",
                "INFO",
                "--hostname",
                "bench-fast@%h",
            ],
        )
        servers.start(
            "worker-ingest",
            [
                *celery,
                "worker",
                "--queues",
                "ingest",
                "--concurrency",
                "1",
                "--loglevel",
                "INFO",
                "--hostname",
                "bench-ingest@%h",
            ],
            nice=10,  # as scripts/demo runs it: long work yields the CPU to readers' work
        )
        servers.start("web", [str(BIN / "gunicorn"), "-c", "vbqweb/gunicorn_conf.py"])
        servers.wait_for("gunicorn", lambda: _http_ok(web_port))
        for name in ("worker-fast", "worker-ingest"):
            servers.wait_for(name, lambda n=name: _log_says(work / f"{n}.log", " ready."))

        record = Record()
        origin = f"http://127.0.0.1:{web_port}"
        load_before = _busy()
        cpu_before = _cpu_seconds()
        start = time.monotonic()
        args.end = start + args.duration
        threads = [
            threading.Thread(target=Reader(origin, name, args, record, setup).run, daemon=True)
            for name in setup["usernames"]
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.duration + 120)
        elapsed = time.monotonic() - start
        load_after = _busy()
        cpu = _cpu_delta(cpu_before, _cpu_seconds())

        # Let the workers finish what was submitted (the score of the last saves).
        deadline = time.monotonic() + 60
        from vbqweb.models import Job

        while time.monotonic() < deadline:
            if (
                not Job.objects.filter(work__endswith="compute_reading_vbq")
                .exclude(state__in=[Job.State.DONE, Job.State.FAILED])
                .exists()
            ):
                break
            time.sleep(0.5)
        check = data_check(record)
        server_side = server_side_latency(record)
        locks = lock_waits(work)
    finally:
        servers.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    kinds = sorted(record.latency)
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} vCPU {platform.machine()}, Python "
        f"{platform.python_version()}",
        "load_average_before_after": [load_before, load_after],
        "command": " ".join(["bench/load.py", *sys.argv[1:]]),
        "database": args.database,
        "readers": args.readers,
        "pace": args.pace,
        "duration_s": round(elapsed, 1),
        "study": {
            "cases": setup["cases"],
            "seeded_readings": setup["readings"],
            "seeded_in_s": round(seeded_in, 1),
        },
        "requests": {
            kind: {
                "n": len(record.latency[kind]),
                "errors": len(record.errors.get(kind, [])),
                "p50_ms": _ms(_pct(record.latency[kind], 50)),
                "p95_ms": _ms(_pct(record.latency[kind], 95)),
                "p99_ms": _ms(_pct(record.latency[kind], 99)),
            }
            for kind in kinds
        },
        "errors": sum(len(v) for v in record.errors.values()),
        "error_samples": {k: v[:3] for k, v in record.errors.items()},
        "score_polls_not_modified": record.not_modified,
        "save_to_score_seen_s": {
            "n": len(record.save_to_score),
            "p50": _pct(record.save_to_score, 50),
            "p95": _pct(record.save_to_score, 95),
            "max": max(record.save_to_score, default=None),
        },
        "save_to_score_server_s": {
            "n": len(server_side),
            "p50": _pct(server_side, 50),
            "p95": _pct(server_side, 95),
            "max": max(server_side, default=None),
        },
        "readings_per_minute": round(len(record.submitted) / (args.duration / 60), 1),
        "lock_waits": locks,
        "cpu_s": cpu | {"available": round(elapsed * (os.cpu_count() or 1), 1)},
        "data_check": check,
    }
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n{report['command']}  ({report['date']}, {report['machine']}, "
        f"load {report['load_average_before_after'][0]} -> "
        f"{report['load_average_before_after'][1]})"
    )
    print(
        f"{report['readers']} readers, {report['pace']} pace, {report['database']}, "
        f"{report['duration_s']} s; study: {report['study']}"
    )
    print(f"\n{'request':<18}{'n':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for kind, row in report["requests"].items():
        print(
            f"{kind:<18}{row['n']:>7}{row['errors']:>8}{row['p50_ms']:>9}{row['p95_ms']:>9}"
            f"{row['p99_ms']:>9}"
        )
    print(f"\nerrors: {report['errors']} {report['error_samples'] or ''}")
    print(f"score polls answered 304: {report['score_polls_not_modified']}")
    for key in ("save_to_score_seen_s", "save_to_score_server_s"):
        row = report[key]
        print(
            f"{key}: n={row['n']} p50={_ms(row['p50'])} ms p95={_ms(row['p95'])} ms "
            f"max={_ms(row['max'])} ms"
        )
    print(f"readings per minute: {report['readings_per_minute']}")
    locks = dict(report["lock_waits"])
    held = locks.pop("held_over_50ms", {})
    print(f"lock waits: {locks}")
    for what, row in held.items():
        print(f"  held {row['n']}x, {row['total_s']} s, max {row['max_s']} s: {what}")
    print(f"CPU seconds during the run: {report['cpu_s']}")
    check = report["data_check"]
    print(f"data check: {'OK' if check['ok'] else 'FAILED'} {check}")


if __name__ == "__main__":
    main()
