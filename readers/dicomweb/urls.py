"""DICOMweb URLs (QIDO-RS and WADO-RS, PS3.18) under ``/dicomweb/``."""

from django.urls import path, register_converter

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

urlpatterns = [
    path("studies", dicomweb.search_studies, name="studies"),
    path("studies/<uid:study_uid>/series", dicomweb.search_series, name="series"),
    path(f"{_SERIES}/instances", dicomweb.search_instances, name="instances"),
    path(f"{_SERIES}/metadata", dicomweb.series_metadata, name="series_metadata"),
    path(_INSTANCE, dicomweb.instance, name="instance"),
    path(f"{_INSTANCE}/metadata", dicomweb.instance_metadata, name="instance_metadata"),
    path(f"{_INSTANCE}/frames/<frames:frame_list>", dicomweb.frames, name="frames"),
]
