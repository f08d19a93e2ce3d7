"""What ``static/js/upload.js`` does, as a Django test client: announce, send chunks, resume,
finish."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db(transaction=True)


class Browser:
    """What ``static/js/upload.js`` does, in Python: announce, pack chunks, resume, finish."""

    def __init__(self, client, study) -> None:
        self.client = client
        self.study = study
        self.payload: dict = {}

    @property
    def upload_pk(self) -> int:
        """The upload's pk, as its jobs and staging folder know it: the page sees only its
        public id (issue 12)."""
        from studies.models import Upload

        return Upload.objects.values_list("pk", flat=True).get(public_id=self.payload["id"])

    def create(self, files: list[bytes], name: str = "Batch") -> dict:
        response = self.client.post(
            reverse("studies:upload_create", kwargs={"pk": self.study.pk}),
            data=json.dumps({"name": name, "files": len(files), "bytes": sum(map(len, files))}),
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        self.payload = response.json()
        return self.payload

    def post_chunk(self, pieces: list[tuple[int, int, bytes, int]]):
        header = ",".join(f"{i}:{o}:{len(d)}:{size}" for i, o, d, size in pieces)
        return self.client.post(
            self.payload["urls"]["chunk"],
            data=b"".join(d for _, _, d, _ in pieces),
            content_type="application/octet-stream",
            headers={"X-Upload-Pieces": header},
        )

    def chunks(self, files: list[bytes], state: dict, chunk_bytes: int, max_pieces: int):
        done = {i for first, last in state.get("complete", []) for i in range(first, last + 1)}
        partial = {int(k): v for k, v in state.get("partial", {}).items()}
        i, offset = 0, None
        while i < len(files):
            pieces, budget = [], chunk_bytes
            while i < len(files) and len(pieces) < max_pieces and (budget > 0 or not files[i]):
                if i in done:
                    i, offset = i + 1, None
                    continue
                if offset is None:
                    offset = partial.get(i, 0)
                take = min(len(files[i]) - offset, budget)
                pieces.append((i, offset, files[i][offset : offset + take], len(files[i])))
                budget -= take
                offset += take
                if offset >= len(files[i]):
                    i, offset = i + 1, None
                else:
                    break
            if pieces:
                yield pieces

    def send(self, files: list[bytes], *, chunk_bytes: int = 8 << 20, max_pieces: int = 100):
        n = 0
        for pieces in self.chunks(
            files, self.status().get("transfer", {}), chunk_bytes, max_pieces
        ):
            response = self.post_chunk(pieces)
            assert response.status_code == 200, response.content
            n += 1
        return n

    def status(self) -> dict:
        self.payload = self.client.get(self.payload["urls"]["status"]).json()
        return self.payload

    def finish(self):
        return self.client.post(self.payload["urls"]["finish"])
