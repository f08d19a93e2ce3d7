"""The audit log's pages and CSV: a study's managers see their study's events and nothing
else, site admins see every event; the CSV is guarded against formulas and its download is
itself an event. (Who reaches which URL: ``tests/test_url_access.py``.)"""

from __future__ import annotations

import csv
import io

from django.urls import reverse

from vbqweb.audit.actions import Action
from vbqweb.audit.models import AuditEvent
from vbqweb.audit.services import record


def _csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_a_manager_sees_the_events_of_their_study_only(client, world) -> None:
    record(Action.DOWNLOADED, actor=world.manager, study=world.study_a, detail={"file": "a.csv"})
    record(Action.DOWNLOADED, actor=world.manager_b, study=world.study_b, detail={"file": "b.csv"})
    client.force_login(world.manager)
    page = client.get(reverse("audit:study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert "a.csv" in page
    assert "b.csv" not in page
    assert "manager_b" not in page
    study_page = client.get(reverse("study", kwargs={"pk": world.study_a.pk})).content.decode()
    assert reverse("audit:study", kwargs={"pk": world.study_a.pk}) in study_page


def test_the_study_log_filters_by_action(client, world) -> None:
    record(Action.DOWNLOADED, actor=world.manager, study=world.study_a, detail={"file": "a.csv"})
    client.force_login(world.manager)
    url = reverse("audit:study", kwargs={"pk": world.study_a.pk})
    assert "a.csv" in client.get(url, {"action": Action.DOWNLOADED}).content.decode()
    assert "a.csv" not in client.get(url, {"action": Action.ROLE_ADDED}).content.decode()


def test_the_study_csv_has_every_field_and_is_itself_recorded(client, world) -> None:
    record(Action.DOWNLOADED, actor=world.manager, study=world.study_a, detail={"file": "a.csv"})
    record(Action.DOWNLOADED, actor=world.manager_b, study=world.study_b, detail={"file": "b.csv"})
    client.force_login(world.manager)
    response = client.get(reverse("audit:study_csv", kwargs={"pk": world.study_a.pk}))
    assert response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    rows = _csv(response)
    assert rows
    assert {row["study_id"] for row in rows} == {str(world.study_a.pk)}
    assert all(len(row["hash"]) == 64 and len(row["prev_hash"]) == 64 for row in rows)
    assert any('"file":"a.csv"' in row["detail"] for row in rows)
    [export] = AuditEvent.objects.filter(detail__file=f"study-{world.study_a.pk}-audit.csv")
    assert (export.action, export.actor_username) == (Action.DOWNLOADED, "manager")


def test_an_admin_sees_every_event_and_a_hostile_username_stays_text(client, world) -> None:
    client.post(reverse("login"), {"username": '=HYPERLINK("http://x","y")', "password": "no"})
    record(Action.DOWNLOADED, actor=world.manager_b, study=world.study_b, detail={"file": "b.csv"})
    client.force_login(world.admin)
    page = client.get(reverse("audit:site")).content.decode()
    assert "b.csv" in page
    assert "HYPERLINK" in page  # escaped by the template, shown as text
    only_b = client.get(reverse("audit:site"), {"study": world.study_b.pk}).content.decode()
    assert "b.csv" in only_b
    assert "HYPERLINK" not in only_b
    rows = _csv(client.get(reverse("audit:site_csv")))
    [failed] = [row for row in rows if row["action"] == Action.LOGIN_FAILED]
    assert failed["detail"].startswith("{")  # JSON, so never a formula
    assert "=HYPERLINK" in failed["detail"]


def test_a_cell_that_starts_like_a_formula_is_neutralised(client, world) -> None:
    world.reader.username = "=cmd|' /C calc'!A0"
    world.reader.save()
    record(Action.LOGIN, actor=world.reader)
    client.force_login(world.admin)
    rows = _csv(client.get(reverse("audit:site_csv"), {"action": Action.LOGIN}))
    mine = [row["actor_username"] for row in rows if row["actor_id"] == str(world.reader.pk)]
    assert mine == ["'=cmd|' /C calc'!A0"]


def test_the_home_page_links_the_whole_log_for_site_admins_only(client, world) -> None:
    client.force_login(world.admin)
    assert reverse("audit:site") in client.get(reverse("home")).content.decode()
    client.force_login(world.manager)
    assert reverse("audit:site") not in client.get(reverse("home")).content.decode()
