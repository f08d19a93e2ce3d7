"""PostgreSQL restarted while a reader reads: a clear retryable answer, and no save lost.

Real processes only: a throw-away PostgreSQL cluster started with ``scripts/services.sh``
(``postgres_start``, ``postgres_stop`` = ``pg_ctl stop -m fast``), the site in gunicorn with
``vbqweb/gunicorn_conf.py`` (kept database connections, as in compose), a reader logged in
through the login form over HTTP, and the viewer's autosave (``rois.json``) in a loop while the
database stops and starts again. Every answer must be a 200 or a 503 JSON with ``Retry-After``
(never a 500 page); saves must succeed again once PostgreSQL is back, and every acknowledged
save must be in the database: the versions acknowledged never repeat (a lost commit would hand
its version out again), and the reading and its latest revision hold the last set acknowledged.

Before ``vbqweb.faults`` the outage's answers were Django's 500 page ("Server Error (500)").
The test starts its own PostgreSQL, so it runs in both of ``scripts/check``'s passes.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from django.urls import reverse

from tests.helpers.workers import wait_until

pytestmark = pytest.mark.integration

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "restart-test-password-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _services(function: str, *args: str) -> None:
    """Run one function of scripts/services.sh, as scripts/check and scripts/demo do."""
    quoted = " ".join(f"'{a}'" for a in args)
    subprocess.run(
        ["bash", "-c", f"source scripts/services.sh && {function} {quoted}"],
        cwd=BASE_DIR,
        check=True,
        timeout=60,
    )


def seed(folder: str) -> None:
    """Run in a child process against the throw-away database: a reader, a phantom case and
    an open reading. Prints what the test needs as JSON."""
    from readers import services
    from studies.models import Role
    from tests.helpers import factories
    from tests.helpers.readings import phantom_case

    study = factories.StudyFactory(name="Restart study")
    reader = factories.UserFactory(username="restart-reader", password=PASSWORD)
    factories.AssignmentFactory(study=study, user=reader, role=Role.READER)
    case, _, truth = phantom_case(study, Path(folder), seed=61)
    reading = services.reading_open(reader=reader, case=case, session=1)
    print(
        json.dumps(
            {"reading": reading.pk, "public_id": str(reading.public_id), "rois": truth["rois"]}
        )
    )


@dataclass
class Site:
    url: str
    database: str  # psycopg conninfo of the site's database
    pgdir: str
    pgport: int
    reading: int  # the pk, for the SQL checks
    public_id: str  # what the URLs carry
    rois: dict
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture
def site(redis_server) -> Iterator[Site]:
    """PostgreSQL, migrated and seeded, and the site in gunicorn against it."""
    pgdir = tempfile.mkdtemp(prefix="vbq-restart-pg-", dir="/tmp")  # runuser postgres reads it
    work = Path(tempfile.mkdtemp(prefix="vbq-restart-"))
    pgport, webport = _free_port(), _free_port()
    proc: subprocess.Popen[bytes] | None = None
    try:
        _services("postgres_start", str(pgport), pgdir)
        admin = f"host=127.0.0.1 port={pgport} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE vbq")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vbqweb.settings",
            "DJANGO_DEBUG": "0",  # as served: Django's 500 would be its plain error page
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pgport}/vbq",
            "DATABASE_CONN_MAX_AGE": "60",  # kept connections, as compose runs it
            "REDIS_URL": redis_server.url,
            "VBQ_VAR_DIR": str(work / "var"),
            "VBQ_MEDIA_ROOT": str(work / "media"),
            "VBQ_UPLOAD_ROOT": str(work / "uploads"),
            "VBQ_BIND": f"127.0.0.1:{webport}",
            "VBQ_WEB_WORKERS": "1",
            "VBQ_WEB_THREADS": "4",
        }
        python = [sys.executable]
        subprocess.run(
            [*python, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
            timeout=180,
        )
        code = (
            "import django; django.setup(); "
            "from tests.integration.test_database_restart import seed; "
            f"seed({str(work)!r})"
        )
        seeded = subprocess.run(
            [*python, "-c", code],
            cwd=BASE_DIR,
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        world = json.loads(seeded.stdout.strip().splitlines()[-1])
        log = work / "gunicorn.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*python, "-m", "gunicorn", "-c", "vbqweb/gunicorn_conf.py"],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{webport}"
        wait_until(lambda: _status(f"{url}/healthz") == 200, timeout=60, what="gunicorn up")
        yield Site(
            url=url,
            database=f"host=127.0.0.1 port={pgport} user=postgres dbname=vbq",
            pgdir=pgdir,
            pgport=pgport,
            reading=world["reading"],
            public_id=world["public_id"],
            rois=world["rois"],
            proc=proc,
            log=log,
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        _services("postgres_stop", pgdir)
        shutil.rmtree(pgdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class Browser:
    """Cookies and CSRF as a browser keeps them; answers of any status, never an exception."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def request(
        self, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=30) as response:
                return int(response.status), dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def login(self, username: str, password: str) -> None:
        status, _, page = self.request(reverse("login"))
        assert status == 200
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None
        form = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token[1]}
        ).encode()
        status, _, page = self.request(
            reverse("login"), data=form, headers={"Referer": self.base + reverse("login")}
        )
        assert status == 200
        assert b"restart-reader" in page, page[:500]


@dataclass
class Answer:
    phase: str
    status: int
    headers: dict[str, str]
    body: bytes
    angle: float

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Autosave:
    """The viewer's autosave in a thread: a new ROI set every ~50 ms, each one distinct (L1's
    angle), every answer kept with the phase (up, stopping, down, back) in which it was
    sent."""

    browser: Browser
    reading: str  # its public id
    rois: dict
    phase: str = "up"
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def count(self, phase: str, status: int) -> int:
        return sum(1 for a in self.answers if a.phase == phase and a.status == status)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            angle = round((i * 0.25) % 90, 2)
            rois = json.loads(json.dumps(self.rois))
            rois["rois"][0]["angle_deg"] = angle
            phase = self.phase
            status, headers, body = self.browser.request(
                reverse("readers:rois", kwargs={"public_id": self.reading}),
                data=json.dumps(rois).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "X-CSRFToken": self.browser.csrf(),
                    "Referer": self.browser.base + "/",
                },
            )
            self.answers.append(Answer(phase, status, headers, body, angle))
            time.sleep(0.05)


def test_a_postgres_restart_gives_retryable_errors_and_loses_no_save(site: Site) -> None:
    browser = Browser(site.url)
    browser.login("restart-reader", PASSWORD)
    status, _, _ = browser.request(reverse("readers:detail", kwargs={"public_id": site.public_id}))
    assert status == 200
    saver = Autosave(browser, site.public_id, site.rois)
    thread = threading.Thread(target=saver.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: saver.count("up", 200) >= 5, timeout=30, what="saves while up")
        saver.phase = "stopping"
        _services("postgres_stop", site.pgdir)  # pg_ctl stop -m fast
        saver.phase = "down"
        wait_until(lambda: saver.count("down", 503) >= 5, timeout=30, what="503s while down")
        saver.phase = "back"
        _services("postgres_start", str(site.pgport), site.pgdir)
        back = time.monotonic()
        wait_until(lambda: saver.count("back", 200) >= 5, timeout=30, what="saves once back")
        print(f"saves succeed again {time.monotonic() - back:.1f} s after PostgreSQL returned")
    finally:
        saver.stop.set()
        thread.join(timeout=40)
    answers = saver.answers

    # Every answer is a success or a clear retryable error: never a 500 page.
    unexpected = [(a.phase, a.status, a.body[:200]) for a in answers if a.status not in (200, 503)]
    assert not unexpected, unexpected
    for answer in answers:
        if answer.status == 503:
            assert answer.headers.get("Retry-After", "").isdigit(), answer.headers
            assert answer.headers["Content-Type"] == "application/json"
            body = answer.json()
            assert body["error"] == "database_unavailable"
            assert "try again" in body["message"]
    # While PostgreSQL was down (after the stop returned, before the start), nothing succeeded.
    acked = [a for a in answers if a.status == 200]
    down = [a.status for a in answers if a.phase == "down"]
    assert down
    assert set(down) == {503}, down
    phases = ("up", "stopping", "down", "back")
    summary = {p: [a.status for a in answers if a.phase == p] for p in phases}
    print({p: {s: v.count(s) for s in set(v)} for p, v in summary.items()})

    # No acknowledged save lost: each save bumps roi_version in the transaction that stores it,
    # so a lost commit would show as a version acknowledged twice; the reading and its latest
    # revision (autosaves coalesce into it) hold the last set acknowledged.
    versions = [a.json()["roi_version"] for a in acked]
    assert versions == sorted(set(versions)), versions
    with psycopg.connect(site.database) as conn:
        roi_version, rois = conn.execute(
            "SELECT roi_version, rois FROM readers_reading WHERE id = %s", [site.reading]
        ).fetchone()
        revision_version, revision_rois = conn.execute(
            "SELECT roi_version, rois FROM readers_readingrevision WHERE reading_id = %s"
            " ORDER BY roi_version DESC LIMIT 1",
            [site.reading],
        ).fetchone()
    assert roi_version == versions[-1]
    assert rois["rois"][0]["angle_deg"] == acked[-1].angle
    assert revision_version == versions[-1]
    assert revision_rois["rois"][0]["angle_deg"] == acked[-1].angle
    assert site.proc.poll() is None, site.log.read_text()[-2000:]
