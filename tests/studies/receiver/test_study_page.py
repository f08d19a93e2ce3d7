"""A study's managers read where a PACS sends its cases (the study's called AE title, the
receiver's host and port, the STOW-RS URL) on the study page; its readers do not."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studies.models import AE_TITLE_ALPHABET, new_ae_title
from tests.helpers import factories

pytestmark = pytest.mark.django_db


def test_every_study_gets_its_own_valid_ae_title(world):
    titles = {world.study_a.ae_title, world.study_b.ae_title}
    titles |= {factories.StudyFactory(name=f"S{k}").ae_title for k in range(20)}
    assert len(titles) == 22
    for title in titles | {new_ae_title()}:
        assert len(title) <= 16
        assert title.startswith("VBQ")
        assert set(title[3:]) <= set(AE_TITLE_ALPHABET)


def test_the_manager_sees_ae_title_host_and_port(client, world, settings):
    settings.VBQ_DICOM_HOST = "pacs-gateway.hospital.example"
    settings.VBQ_DICOM_PORT = 11999
    client.force_login(world.manager)
    page = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert world.study_a.ae_title in page
    assert "pacs-gateway.hospital.example" in page
    assert "11999" in page
    assert f"/studies/{world.study_a.pk}/dicomweb</code>" in page
    assert world.study_b.ae_title not in page


def test_a_reader_does_not(client, world):
    client.force_login(world.reader)
    page = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert world.study_a.ae_title not in page
