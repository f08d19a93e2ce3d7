"""QIDO-RS matching (``readers.dicomweb.query``) and rendering (``readers.dicomweb.render``),
pure: no site."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from readers.dicomweb import query as q
from readers.dicomweb import render
from tests.helpers.dicomfactory import mr_dataset

STUDY = {
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Anon^Case7"}]},
    "00080020": {"vr": "DA", "Value": ["20240315"]},
    "00080030": {"vr": "TM", "Value": ["103015"]},
    "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
    "00080061": {"vr": "CS", "Value": ["MR", "SR"]},
    "00200013": {"vr": "IS", "Value": [7]},
    "00080050": {"vr": "SH"},
}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"PatientName": "Anon*"}, True),
        ({"PatientName": "anon^case?"}, True),  # person names: any case
        ({"PatientName": "Anon"}, False),
        ({"00100010": "*Case7"}, True),
        ({"StudyDate": "20240315"}, True),
        ({"StudyDate": "20240301-20240331"}, True),
        ({"StudyDate": "20240316-"}, False),
        ({"StudyDate": "-20240315"}, True),
        ({"StudyTime": "1000-1100"}, True),
        ({"StudyInstanceUID": "9.9\\1.2.3"}, True),
        ({"StudyInstanceUID": "1.2.*"}, False),  # no wildcards in UIDs
        ({"ModalitiesInStudy": "SR"}, True),
        ({"ModalitiesInStudy": "mr"}, False),  # case-sensitive outside person names
        ({"InstanceNumber": "7"}, True),
        ({"AccessionNumber": ""}, True),  # universal matching
        ({"AccessionNumber": "A1"}, False),
        ({"PatientID": "*"}, False),  # an absent attribute matches only the universal key
    ],
)
def test_matching(keys, expected) -> None:
    query = q.parse(keys.items())
    assert q.matches(STUDY, query.keys) is expected


def test_parse_refuses_what_it_cannot_answer() -> None:
    for bad in ({"NoSuchKeyword": "x"}, {"limit": "-1"}, {"offset": "x"}, {"00101010.x": "1"}):
        with pytest.raises(q.QueryError):
            q.parse(bad.items())


def test_results_hold_defaults_keys_and_included_fields() -> None:
    query = q.parse([("PatientName", "Anon*"), ("includefield", "00080050,StudyTime")])
    result = q.result(STUDY, q.STUDY, query)
    assert {"00100010", "00080050", "00080030", "0020000D", "00080061"} <= set(result)
    assert "00200013" not in result  # an instance attribute is not a study's
    every = q.result(STUDY, q.INSTANCE, q.parse([("includefield", "all")]))
    assert set(STUDY) <= set(every)
    page = q.page(list(range(10)), q.parse([("limit", "3"), ("offset", "8")]))
    assert page == [8, 9]


def test_rendering_windows_and_fits_the_viewport() -> None:
    ds = mr_dataset(np.arange(64 * 32, dtype=np.uint16).reshape(64, 32))
    png = render.render(
        ds, 1, media_type="image/png", window=render.Window(1024, 2048, "linear_exact"),
        viewport=render.Viewport(16, 16),
    )  # fmt: skip
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (8, 16)
    pixels = np.asarray(image)
    assert pixels[0].mean() < pixels[-1].mean()  # brighter further down: values grow
    narrow = render.apply_window(np.array([0.0, 99.0, 100.0, 101.0, 500.0]), render.Window(100, 2))
    assert narrow.tolist()[0] == 0
    assert narrow.tolist()[-1] == 255
    with pytest.raises(render.RenderError):
        render.parse_window("100")
    with pytest.raises(render.RenderError):
        render.parse_viewport("0,10")
    with pytest.raises(render.RenderError):
        render.render(ds, 2)  # a one-frame instance has no frame 2
