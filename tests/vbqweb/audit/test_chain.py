"""The audit trail is append-only and tamper-evident: each event carries the previous event's
hash, the ORM refuses to change history, and ``manage.py audit_verify`` names the first event
where the stored chain and the recomputed one part (an edited, a deleted, a moved event)."""

from __future__ import annotations

import io
import itertools
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections

from vbqweb.audit.actions import Action
from vbqweb.audit.chain import GENESIS, entry_hash
from vbqweb.audit.models import AppendOnly, AuditEvent
from vbqweb.audit.services import record


def _verify(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def _five(db) -> list[AuditEvent]:
    return [
        record(Action.DOWNLOADED, object_type="x", object_id=i, study=7, detail={"file": f"{i}"})
        for i in range(1, 6)
    ]


def _raw(sql: str, params: list[object]) -> None:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def test_events_chain_each_to_the_one_before(db) -> None:
    events = _five(db)
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    stored = AuditEvent.objects.get(sequence=3)
    fields = {f.name: getattr(stored, f.name) for f in AuditEvent._meta.fields}
    assert entry_hash(fields) == stored.hash  # the hash reads back the same from the database
    assert "audit chain intact: 5 events, head #5 " + events[-1].hash in _verify()


def test_the_orm_refuses_to_change_or_delete_an_event(db) -> None:
    event = _five(db)[0]
    event.detail = {"file": "other"}
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(detail={})
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).detail == {"file": "1"}


def test_an_action_outside_the_vocabulary_is_refused(db) -> None:
    with pytest.raises(ValueError, match="is not a valid Action"):
        record("reading.tampered")
    assert not AuditEvent.objects.exists()


def test_verify_names_an_edited_event(db) -> None:
    _five(db)
    _raw("UPDATE {table} SET detail = %s WHERE sequence = 3", ['{"file": "forged"}'])
    with pytest.raises(CommandError, match=r"broken at event #3: .*edited"):
        _verify()


def test_verify_names_the_event_after_a_deleted_one(db) -> None:
    _five(db)
    _raw("DELETE FROM {table} WHERE sequence = %s", [3])
    with pytest.raises(CommandError, match=r"broken at event #4: expected sequence 3"):
        _verify()


def test_verify_names_a_moved_event(db) -> None:
    """Events 2 and 3 swap places (their sequence numbers exchanged): the chain breaks at 2."""
    _five(db)
    _raw("UPDATE {table} SET sequence = %s WHERE sequence = %s", [100, 2])
    _raw("UPDATE {table} SET sequence = %s WHERE sequence = %s", [2, 3])
    _raw("UPDATE {table} SET sequence = %s WHERE sequence = %s", [3, 100])
    with pytest.raises(CommandError, match=r"broken at event #2: prev_hash"):
        _verify()


def test_verify_with_a_noted_head_finds_events_removed_from_the_end(db) -> None:
    events = _five(db)
    head = f"{events[-1].sequence}:{events[-1].hash}"
    assert "intact" in _verify("--head", head)
    _raw("DELETE FROM {table} WHERE sequence = %s", [5])
    assert "intact: 4 events" in _verify()  # a shorter chain still holds on its own...
    with pytest.raises(CommandError, match=r"broken at event #5: not the head"):
        _verify("--head", head)  # ...but not against the head noted before


def test_verify_error_is_one_line(db) -> None:
    """Spec §3: a command-line error is one line (CommandError: exit status 1)."""
    _five(db)
    _raw("UPDATE {table} SET actor_username = %s WHERE sequence = 2", ["mallory"])
    with pytest.raises(CommandError) as excinfo:
        _verify()
    assert "\n" not in str(excinfo.value)


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_never_fork_the_chain() -> None:
    """Writers in parallel threads (each its own connection): one chain, no gap, no fork."""
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                record(Action.DOWNLOADED, object_type="t", object_id=f"{n}-{i}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)) == list(
        range(1, 41)
    )
    assert "intact: 40 events" in _verify()
