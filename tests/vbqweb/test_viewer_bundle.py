"""The viewer bundle as built (``npm run build``; ``scripts/setup`` runs it) and as served:
split so that the first image waits for no tool and no codec, and compressed (issue 15 item 4).

These read ``static/dist/`` itself, so a change to ``static/src/build.mjs`` or to the viewer's
imports that put Cornerstone's tools or a codec back on the first image's path, or a build that
stopped writing the ``.br``/``.gz`` copies, fails here; bench/viewer.py measures the time.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import brotli
import pytest
from django.test import Client, override_settings

from tests.helpers.paths import REPO

DIST = REPO / "static/dist"
STATIC_IMPORT = re.compile(r'(?:^|[;}])\s*import\s*(?:[\w{},\s*$]+from\s*)?"(\./[^"]+\.js)"')
DYNAMIC_IMPORT = re.compile(r'import\("(\./[^"]+\.js)"\)')

# Strings found only in what must stay off the first image's path: an event name of Cornerstone's
# tools, and what each of the five codecs' Emscripten glue holds (the loader's decoders, which
# only call the glue, stay in the worker).
TOOLS_MARK = "CORNERSTONE_TOOLS_ANNOTATION_COMPLETED"
CODEC_MARK = "wasmBinary"


@pytest.fixture(scope="module")
def dist() -> Path:
    if not (DIST / "viewer.js").exists():
        pytest.fail(f"{DIST}/viewer.js is missing: run `npm ci && npm run build` (scripts/setup)")
    return DIST


def _static_closure(entry: Path) -> dict[Path, str]:
    """The module and everything it imports statically (what the browser must fetch and
    evaluate before the module runs), by path, with its text."""
    seen: dict[Path, str] = {}
    todo = [entry]
    while todo:
        path = todo.pop().resolve()
        if path in seen:
            continue
        seen[path] = text = path.read_text(encoding="utf-8")
        todo += [path.parent / name for name in STATIC_IMPORT.findall(text)]
    return seen


def _dynamic_imports(modules: dict[Path, str]) -> list[Path]:
    return [
        (path.parent / name).resolve()
        for path, text in modules.items()
        for name in DYNAMIC_IMPORT.findall(text)
    ]


def test_the_viewer_entry_is_small_and_imports_cornerstone_at_once(dist: Path) -> None:
    entry = _static_closure(dist / "viewer.js")
    assert sum(len(t) for t in entry.values()) < 100_000  # the page's own modules (~35 kB)
    dynamic = _dynamic_imports(entry)
    cornerstone = [p for p in dynamic if p.name.startswith("cornerstone-")]
    assert len(cornerstone) == 1, dynamic
    first = _static_closure(cornerstone[0])
    size = sum(len(t) for t in first.values())
    # Core + image loader; the minimal Cornerstone3D page's one bundle is 3.34 MB.
    assert 1_000_000 < size < 3_400_000, size


def test_the_first_image_path_holds_no_tool_and_no_codec(dist: Path) -> None:
    entry = _static_closure(dist / "viewer.js")
    cornerstone = next(p for p in _dynamic_imports(entry) if p.name.startswith("cornerstone-"))
    first = {**entry, **_static_closure(cornerstone)}
    worker = _static_closure(dist / "decodeImageFrameWorker.js")
    for path, text in {**first, **worker}.items():
        assert TOOLS_MARK not in text, path.name
        assert CODEC_MARK not in text, path.name

    # They are built, and come when asked for: the tools after the first image (the viewer's
    # dynamic imports), each codec when the worker meets its transfer syntax.
    later = "".join(text for p in _dynamic_imports(entry) for text in _static_closure(p).values())
    assert TOOLS_MARK in later
    codecs = [p for p in _dynamic_imports(worker) if CODEC_MARK in p.read_text(encoding="utf-8")]
    assert len(codecs) == 5, codecs  # OpenJPEG, CharLS, libjpeg-turbo, libjxl, OpenJPH


def test_every_script_and_codec_has_brotli_and_gzip_copies(dist: Path) -> None:
    files = [p for p in dist.rglob("*") if p.suffix in {".js", ".wasm"}]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        assert brotli.decompress((path.parent / f"{path.name}.br").read_bytes()) == data, path
        assert gzip.decompress((path.parent / f"{path.name}.gz").read_bytes()) == data, path


@pytest.mark.parametrize("encoding", ["br", "gzip"])
def test_the_site_serves_the_bundle_compressed_to_browsers_that_accept_it(
    dist: Path, encoding: str
) -> None:
    """Through the site's own middleware (WhiteNoise, finding files as under DEBUG): the
    compressed copy, labelled, decoding to the file; the same bytes uncompressed otherwise."""
    entry = _static_closure(dist / "viewer.js")
    chunk = max(
        _static_closure(next(iter(_dynamic_imports(entry)))), key=lambda p: p.stat().st_size
    )
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        client = Client()
        for path in (dist / "viewer.js", chunk, dist / "decodeImageFrameWorker.js"):
            url = "/static/" + path.relative_to(REPO / "static").as_posix()
            response = client.get(url, HTTP_ACCEPT_ENCODING=f"{encoding}, identity")
            assert response.status_code == 200, url
            assert response["Content-Encoding"] == encoding, url
            assert "Accept-Encoding" in response["Vary"]
            body = b"".join(response.streaming_content)
            decode = brotli.decompress if encoding == "br" else gzip.decompress
            assert decode(body) == path.read_bytes()
            assert len(body) < 0.5 * path.stat().st_size
            plain = client.get(url)
            assert not plain.has_header("Content-Encoding")
            assert b"".join(plain.streaming_content) == path.read_bytes()
