"""Local disk stays the default: no variable, no object store, the same folders as before.

``VBQ_STORAGE`` unset means instances under ``MEDIA_ROOT`` and staged uploads under
``VBQ_UPLOAD_ROOT`` (owner-only files), and a site without the S3 variables never talks to an
object store. What counts as "the object store is down, try later" is also pinned here: local
disk errors never do. The S3 side runs against a real server in
``tests/integration/test_object_storage.py``.
"""

from __future__ import annotations

import io
import stat

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

from studies.models import Instance, Upload, UploadStatus
from studies.uploads.ingest import upload_ingest
from studies.uploads.staging import staged_files, staging_exists
from tests.helpers.brokers import broker_down
from tests.helpers.phi import phi_dataset
from tests.helpers.s3 import settings_with
from tests.helpers.uploads import Browser
from vbqweb.storage import UploadRootStorage, storage_unavailable

pytestmark = pytest.mark.django_db(transaction=True)

S3_VARIABLES = (
    "VBQ_STORAGE",
    "VBQ_S3_ENDPOINT_URL",
    "VBQ_S3_BUCKET",
    "VBQ_S3_ACCESS_KEY_ID",
    "VBQ_S3_SECRET_ACCESS_KEY",
    "VBQ_S3_REGION",
)


def _file(index: int) -> bytes:
    buffer = io.BytesIO()
    phi_dataset(index=index).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_without_variables_both_storages_are_local_folders() -> None:
    probe = settings_with(dict.fromkeys(S3_VARIABLES))
    assert probe.VBQ_STORAGE == "local"
    assert probe.STORAGES["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert probe.STORAGES["staging"] == {"BACKEND": "vbqweb.storage.UploadRootStorage"}
    assert settings.VBQ_STORAGE == "local"
    assert isinstance(storages["default"], FileSystemStorage)
    assert storages["default"].location == str(settings.MEDIA_ROOT)
    staging = storages["staging"]
    assert isinstance(staging, UploadRootStorage)
    assert staging.location == str(settings.VBQ_UPLOAD_ROOT)


def test_s3_puts_instances_and_staging_under_two_prefixes_of_one_bucket() -> None:
    probe = settings_with(
        {
            "VBQ_STORAGE": "s3",
            "VBQ_S3_ENDPOINT_URL": "http://127.0.0.1:1",
            "VBQ_S3_BUCKET": "b",
            "VBQ_S3_ACCESS_KEY_ID": "k",
            "VBQ_S3_SECRET_ACCESS_KEY": "s",
            "VBQ_S3_REGION": None,
        }
    )
    default, staging = probe.STORAGES["default"], probe.STORAGES["staging"]
    assert default["BACKEND"] == staging["BACKEND"] == "storages.backends.s3.S3Storage"
    assert (default["OPTIONS"]["location"], staging["OPTIONS"]["location"]) == ("media", "staging")
    assert default["OPTIONS"]["file_overwrite"] is False
    assert default["OPTIONS"]["bucket_name"] == "b"
    assert default["OPTIONS"]["region_name"] == "us-east-1"
    assert default["OPTIONS"]["default_acl"] is None
    assert "whitenoise" in probe.STORAGES["staticfiles"]["BACKEND"]  # unchanged
    with pytest.raises(ValueError, match="VBQ_STORAGE"):
        settings_with({"VBQ_STORAGE": "ftp"})


def test_a_local_upload_waits_in_the_upload_root_and_lands_in_the_media_root(
    client, world, upload_root, media_root
) -> None:
    files = [_file(1), _file(2)]
    client.force_login(world.manager)
    browser = Browser(client, world.study_a)
    browser.create(files)
    browser.send(files, chunk_bytes=1024)  # each file cut into pieces
    upload = Upload.objects.get(public_id=browser.payload["id"])
    folder = upload_root / str(upload.pk)
    pieces = sorted(folder.iterdir())
    assert len(pieces) > 2
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pieces)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {i: f.complete for i, f in staged_files(upload).items()} == {0: True, 1: True}
    with broker_down():
        assert browser.finish().status_code == 200
    assert upload_ingest(upload_id=upload.pk) == UploadStatus.DONE
    assert not folder.exists()
    assert not staging_exists(upload)
    for instance in Instance.objects.filter(upload=upload):
        assert (media_root / instance.file.name).is_file()


def test_only_an_unreachable_object_store_means_try_again_later() -> None:
    def client_error(status: int, code: str) -> ClientError:
        response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
        return ClientError(response, "GetObject")  # type: ignore[arg-type]

    assert storage_unavailable(EndpointConnectionError(endpoint_url="http://s3"))
    assert storage_unavailable(ReadTimeoutError(endpoint_url="http://s3"))
    assert storage_unavailable(client_error(503, "ServiceUnavailable"))
    assert storage_unavailable(client_error(500, "InternalError"))
    assert not storage_unavailable(client_error(404, "NoSuchKey"))
    assert not storage_unavailable(client_error(403, "AccessDenied"))
    assert not storage_unavailable(FileNotFoundError("local disk"))
    assert not storage_unavailable(OSError(28, "No space left on device"))
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = EndpointConnectionError(endpoint_url="http://s3")
    assert storage_unavailable(wrapped)
