"""The study design's people page shows Bonett's cases-needed table for its readers (issue 14)."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.urls import reverse

from readers.management.commands.seed_demo import DEMO_STUDY
from studies.models import Study
from studies.stats.planning import cases_needed


def test_the_people_page_plans_cases_for_the_studys_readers(client, db) -> None:
    call_command("seed_demo", cases=2, seed=3, stdout=io.StringIO())
    study = Study.objects.get(name=DEMO_STUDY)
    manager = next(a.user for a in study.assignments.all() if a.role == "manager")
    readers = study.assignments.filter(role="reader").count()
    client.force_login(manager)
    body = client.get(reverse("studies:people", kwargs={"pk": study.pk})).content.decode()
    assert f"(with {readers} readers)" in body
    assert "Bonett" in body
    assert f'<td class="num">{cases_needed(0.8, readers, 0.2)}</td>' in body
