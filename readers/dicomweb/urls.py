"""DICOMweb URLs (QIDO-RS and WADO-RS, PS3.18) under ``/dicomweb/``."""

from django.urls import path, register_converter

from readers.dicomweb import pictures, qido
from readers.dicomweb import views as dicomweb


class UidConverter:
    """A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1)."""

    regex = r"[0-9][0-9.]{0,63}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class FrameListConverter:
    regex = r"[0-9]+(?:,[0-9]+)*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return str(value)


register_converter(UidConverter, "uid")
register_converter(FrameListConverter, "frames")

app_name = "dicomweb"

_SERIES = "studies/<uid:study_uid>/series/<uid:series_uid>"
_INSTANCE = f"{_SERIES}/instances/<uid:sop_uid>"

_STUDY = "studies/<uid:study_uid>"
_FRAMES = f"{_INSTANCE}/frames/<frames:frame_list>"

urlpatterns = [
    # QIDO-RS (PS3.18 10.6): every level
    path("studies", qido.search_studies, name="studies"),
    path("series", qido.search_all_series, name="all_series"),
    path("instances", qido.search_all_instances, name="all_instances"),
    path(f"{_STUDY}/series", qido.search_series, name="series"),
    path(f"{_STUDY}/instances", qido.search_study_instances, name="study_instances"),
    path(f"{_SERIES}/instances", qido.search_instances, name="instances"),
    # WADO-RS (PS3.18 10.4): retrieve, metadata, frames
    path(_STUDY, dicomweb.study, name="study"),
    path(f"{_STUDY}/metadata", dicomweb.study_metadata, name="study_metadata"),
    path(_SERIES, dicomweb.series, name="series_retrieve"),
    path(f"{_SERIES}/metadata", dicomweb.series_metadata, name="series_metadata"),
    path(_INSTANCE, dicomweb.instance, name="instance"),
    path(f"{_INSTANCE}/metadata", dicomweb.instance_metadata, name="instance_metadata"),
    path(_FRAMES, dicomweb.frames, name="frames"),
    # rendered resources and thumbnails (PS3.18 8.3.5)
    path(f"{_STUDY}/rendered", pictures.study_rendered, name="study_rendered"),
    path(f"{_SERIES}/rendered", pictures.series_rendered, name="series_rendered"),
    path(f"{_INSTANCE}/rendered", pictures.instance_rendered, name="instance_rendered"),
    path(f"{_FRAMES}/rendered", pictures.frames_rendered, name="frames_rendered"),
    path(f"{_STUDY}/thumbnail", pictures.study_thumbnail, name="study_thumbnail"),
    path(f"{_SERIES}/thumbnail", pictures.series_thumbnail, name="series_thumbnail"),
    path(f"{_INSTANCE}/thumbnail", pictures.instance_thumbnail, name="instance_thumbnail"),
    path(f"{_FRAMES}/thumbnail", pictures.frames_thumbnail, name="frames_thumbnail"),
]
