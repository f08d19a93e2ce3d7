"""The layout keeps its promises: ``docs/architecture.md``'s room table matches the code's imports,
modules stay small, pure packages say what they must not import, and the level labels exist once.

Import cycles and the pure packages' forbidden imports are import-linter contracts
(``pyproject.toml``, run by ``scripts/check``); these are the rules it cannot express.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

import grimp
import pytest

from tests.helpers.paths import REPO

ARCHITECTURE = REPO / "docs/architecture.md"
MAX_LINES = 600
LONG_ON_PURPOSE: set[str] = set()
"""Named with the reason in docs/architecture.md ("Modules over ~600 lines")."""

PURE_PACKAGES = ["readers/measurement", "studies/ingest", "studies/stats", "studies/phantom"]
WORDS = {
    "nothing": None,
    "vocabulary": "studies.vocabulary",
    "ingest": "studies.ingest",
    "stats": "studies.stats",
    "phantom": "studies.phantom",
    "uploads": "studies.uploads",
    "receiver": "studies.receiver",
    "studies": "studies",
    "measurement": "readers.measurement",
    "analysis": "readers.analysis",
    "adjudication": "readers.adjudication",
    "dicomweb": "readers.dicomweb",
    "readers": "readers",
    "vbqweb": "vbqweb",
}
"""How the table's last column names a room."""


def product_files(*suffixes: str) -> list[str]:
    roots = ["readers", "studies", "vbqweb", "static/src", "static/js", "templates"]
    return sorted(
        path.relative_to(REPO).as_posix()
        for root in roots
        for path in (REPO / root).rglob("*")
        if path.suffix in suffixes
        and "migrations" not in path.parts
        and not path.name.endswith(".test.js")
        and "fixtures" not in path.parts
    )


def documented_rooms() -> dict[str, set[str]]:
    """Room (dotted) -> the rooms it imports, from the table in docs/architecture.md."""
    rooms: dict[str, set[str]] = {}
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        path = cells[0].split("`")[1]
        if not path.startswith(("readers", "studies", "vbqweb")):
            continue
        room = path.removesuffix(".py").strip("/").replace("/", ".")
        words = [w.strip() for w in cells[3].split(",")]
        rooms[room] = {WORDS[w] for w in words if WORDS[w] is not None}
    return rooms


def room_of(module: str, rooms: list[str]) -> str | None:
    if ".migrations" in module or ".management" in module:
        return None  # migrations are generated; commands are listed by what they drive
    matches = [r for r in rooms if module == r or module.startswith(r + ".")]
    return max(matches, key=len) if matches else None


def test_the_room_table_lists_every_room_and_its_arrows() -> None:
    documented = documented_rooms()
    assert {"readers", "studies", "vbqweb", "studies.vocabulary"} <= set(documented)
    graph = grimp.build_graph("readers", "studies", "vbqweb")
    actual: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        here = room_of(module, list(documented))
        if here is None:
            continue
        actual.setdefault(here, set())
        for imported in graph.find_modules_directly_imported_by(module):
            there = room_of(imported, list(documented))
            if there is not None and there != here:
                actual[here].add(there)
    assert dict(actual) == documented


def test_every_package_is_a_documented_room_or_inside_one() -> None:
    rooms = documented_rooms()
    for init in sorted(REPO.glob("*/**/__init__.py")):
        package = init.parent.relative_to(REPO).as_posix().replace("/", ".")
        if not package.startswith(("readers", "studies", "vbqweb")):
            continue
        if any(part in package for part in ("migrations", "management", "templatetags")):
            continue
        assert room_of(package, list(rooms)) is not None, f"{package} is in no room of the table"


def test_no_product_module_is_long_unless_named() -> None:
    lines = {path: (REPO / path).read_text().count("\n") for path in product_files(".py", ".js")}
    long = {path: n for path, n in lines.items() if n > MAX_LINES and path not in LONG_ON_PURPOSE}
    assert long == {}
    assert len(lines) > 100  # the walk found the product


def test_the_long_modules_are_named_in_the_architecture() -> None:
    text = ARCHITECTURE.read_text()
    for path in LONG_ON_PURPOSE:
        assert f"`{path}`" in text


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_say_what_they_must_not_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((REPO / package / "__init__.py").read_text())) or ""
    flat = " ".join(doc.split()).lower()
    assert "must not import" in flat or "may import" in flat, package
    assert "django" in flat, package


def test_the_level_labels_are_defined_once() -> None:
    pattern = re.compile(r"""["']L1["'],\s*["']L2["']""")
    found = [
        path
        for path in product_files(".py", ".js", ".html", ".mjs")
        if pattern.search((REPO / path).read_text())
    ]
    assert found == ["studies/vocabulary.py"]
