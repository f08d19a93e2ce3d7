"""docker-compose.yml, the Dockerfile and the README's multi-machine commands, checked by reading.

There is no Docker engine where the tests run, so the file is parsed and held to the rules that
make it safe on several machines: a health check on every long-running service, ordering by
health, one Celery beat, no volume shared by web and workers (they share only PostgreSQL, Redis
and S3), Redis with a password, every variable handed to the site one that its settings read,
every queue served by a worker, and README commands that name services the file has.

The YAML is read by PyYAML when the venv has it, otherwise by js-yaml, which the viewer's locked
npm packages already install (node_modules/js-yaml, with Node from scripts/setup).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from vbqweb.tasks import QUEUES

BASE_DIR = Path(__file__).resolve().parent.parent
COMPOSE = BASE_DIR / "docker-compose.yml"
APP_IMAGE = "vbq-reader-studies:latest"
# The files that read the environment the compose file hands to the site's containers.
ENV_READERS = (
    "vbqweb/settings.py",
    "vbqweb/settings_production.py",
    "vbqweb/gunicorn_conf.py",
    "manage.py",
)
# Read by a library called in the settings, under its default name.
IMPLICIT = {"DATABASE_URL": "dj_database_url.config("}
SECTION = "## Running on several machines"


def load_yaml(path: Path) -> dict:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        return yaml.safe_load(path.read_text())
    node, js_yaml = shutil.which("node"), BASE_DIR / "node_modules" / "js-yaml"
    if node is None or not js_yaml.is_dir():
        pytest.fail("no YAML parser: neither PyYAML nor node_modules/js-yaml (run scripts/setup)")
    script = (
        "const yaml = require(process.argv[1]);"
        "const text = require('fs').readFileSync(process.argv[2], 'utf8');"
        "process.stdout.write(JSON.stringify(yaml.load(text)));"
    )
    out = subprocess.run(
        [node, "-e", script, str(js_yaml), str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(out.stdout)


@cache
def compose() -> dict:
    return load_yaml(COMPOSE)


def services() -> dict[str, dict]:
    return compose()["services"]


def app_services() -> dict[str, dict]:
    """The services that run the site's image: web, workers, beat and the one-shots."""
    return {name: s for name, s in services().items() if s.get("image") == APP_IMAGE}


def command(service: dict) -> list[str]:
    value = service.get("command", [])
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def one_shots() -> set[str]:
    """Services that run once and end (migrate, bucket): others wait for their success."""
    found = set()
    for name, service in services().items():
        waited = [
            dep.get("condition")
            for other in services().values()
            for dep_name, dep in (other.get("depends_on") or {}).items()
            if dep_name == name
        ]
        if service.get("restart") == "no" and waited:
            assert set(waited) == {"service_completed_successfully"}, name
            found.add(name)
    return found


def test_the_expected_services_are_there() -> None:
    assert set(services()) >= {
        "web",
        "worker",
        "worker-ingest",
        "receiver",
        "beat",
        "redis",
        "postgres",
        "s3",
        "bucket",
        "migrate",
    }
    assert one_shots() == {"migrate", "bucket"}


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in services().items():
        if name in one_shots():
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check.get("test"), name
        assert check.get("interval"), name


def test_services_wait_for_their_dependencies_to_be_healthy() -> None:
    for name, service in services().items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for dep, rule in depends.items():
            assert dep in services(), f"{name} depends on a missing {dep}"
            expected = "service_completed_successfully" if dep in one_shots() else "service_healthy"
            assert rule.get("condition") == expected, f"{name} -> {dep}"
    for name in ("web", "worker", "worker-ingest", "receiver", "beat"):
        assert set(services()[name]["depends_on"]) >= {"migrate", "bucket", "redis"}, name


def test_exactly_one_beat_and_no_worker_schedules() -> None:
    beats = [
        name
        for name, s in services().items()
        if command(s)[:4] == ["celery", "-A", "vbqweb", "beat"]
    ]
    assert beats == ["beat"]
    assert services()["beat"].get("deploy", {}).get("replicas", 1) == 1
    for name, service in services().items():
        argv = command(service)
        if "worker" in argv:
            assert "-B" not in argv, name
            assert "--beat" not in argv, name


def test_every_queue_is_served_and_ingest_on_its_own() -> None:
    served: dict[str, set[str]] = {}
    for name, service in app_services().items():
        argv = command(service)
        if "worker" in argv:
            served[name] = set(argv[argv.index("--queues") + 1].split(","))
    assert set().union(*served.values()) == set(QUEUES)
    assert served["worker-ingest"] == {"ingest"}
    assert "ingest" not in served["worker"]
    # ... and it yields the CPU to readers' work on a shared machine (the default weight: 1024).
    assert services()["worker-ingest"]["cpu_shares"] < 1024
    assert "cpu_shares" not in services()["worker"]


def test_web_and_workers_share_no_volume_and_keep_files_in_s3() -> None:
    """Nothing but PostgreSQL, Redis and S3 between them: each can run on its own machine."""
    for name, service in app_services().items():
        assert not service.get("volumes"), f"{name} mounts {service.get('volumes')}"
        env = service["environment"]
        assert env["VBQ_STORAGE"] == "s3", name
        assert "VBQ_MEDIA_ROOT" not in env, name
        assert "VBQ_UPLOAD_ROOT" not in env, name


def test_every_variable_handed_to_the_site_is_read_by_its_settings() -> None:
    code = "\n".join((BASE_DIR / path).read_text() for path in ENV_READERS)
    for name, service in app_services().items():
        for variable in service["environment"]:
            read = IMPLICIT.get(variable, f'"{variable}"')
            assert read in code, f"{name}: {variable} is read by no setting"


def test_redis_has_a_password_and_the_site_uses_it() -> None:
    redis = services()["redis"]
    assert "--requirepass" in " ".join(command(redis))
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    for name, service in app_services().items():
        url = service["environment"]["REDIS_URL"]
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@[^/]+/\d+", url), (name, url)


def test_published_ports_name_their_address() -> None:
    """No port is published on every interface by default (Docker's 0.0.0.0)."""
    for name, service in services().items():
        for port in service.get("ports", []):
            address = str(port).rsplit(":", 2)[0]
            assert address.startswith("${"), (name, port)
            assert address.endswith(":-127.0.0.1}"), (name, port)


def test_web_serves_with_the_shared_gunicorn_settings() -> None:
    assert command(services()["web"]) == ["gunicorn", "-c", "vbqweb/gunicorn_conf.py"]
    assert (BASE_DIR / "vbqweb/gunicorn_conf.py").is_file()
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "vbqweb/gunicorn_conf.py"]' in dockerfile


def test_every_inline_python_compiles() -> None:
    """The bucket one-shot and the health checks run `python -c`: a typo would show only there."""
    snippets = []
    for name, service in services().items():
        for argv in (command(service), (service.get("healthcheck") or {}).get("test", [])):
            argv = [str(a) for a in argv]
            if "python" in argv and "-c" in argv:
                snippets.append((name, argv[argv.index("-c") + 1]))
    assert {name for name, _ in snippets} >= {"bucket", "web", "receiver", "beat"}
    for name, code in snippets:
        compile(code, f"<{name}>", "exec")


def test_the_image_holds_every_python_package_of_the_site() -> None:
    """A new top-level app that the Dockerfile does not copy would fail only in production."""
    copied = set(re.findall(r"^COPY (\S+) \./\1$", (BASE_DIR / "Dockerfile").read_text(), re.M))
    packages = {
        path.parent.name
        for path in BASE_DIR.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench"}
    }
    assert packages <= copied, packages - copied


def readme_commands() -> list[list[str]]:
    readme = (BASE_DIR / "README.md").read_text()
    assert SECTION in readme
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = [
        line.strip()
        for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", section, re.S)
        for line in block.splitlines()
    ]
    return [shlex.split(line, comments=True) for line in lines if line.startswith("docker compose")]


def named_services(argv: list[str]) -> list[str]:
    """The services a `docker compose ...` command line names (positionals and --scale)."""
    args = argv[2:]
    with_value = {"-f", "--file", "-p", "--project-name", "--env-file", "--profile", "--scale"}
    names, positional, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--scale":
            names.append(args[i + 1].split("=")[0])
        if arg in with_value:
            i += 2
            continue
        if not arg.startswith("-"):
            positional.append(arg)
        i += 1
    subcommand, rest = positional[0], positional[1:]
    if subcommand in {"run", "exec"}:
        rest = rest[:1]  # then the command to run in it
    elif subcommand in {"config", "down", "version"}:
        rest = []
    return names + rest


def test_the_readme_multi_machine_commands_name_services_that_exist() -> None:
    commands = readme_commands()
    assert len(commands) >= 5
    named = [name for argv in commands for name in named_services(argv)]
    assert set(named) >= {"web", "worker", "worker-ingest", "receiver", "beat", "migrate"}
    missing = sorted(set(named) - set(services()))
    assert not missing, missing


def test_compose_reads_only_variables_the_readme_documents() -> None:
    """Every ${VARIABLE} of the compose file is explained in the README's section."""
    readme = (BASE_DIR / "README.md").read_text()
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    undocumented = sorted(v for v in variables if v not in section)
    assert not undocumented, undocumented
