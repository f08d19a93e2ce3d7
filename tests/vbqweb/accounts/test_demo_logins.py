"""The demo's printed logins say that the admin and the manager enrol a second factor at their
first sign-in (they cannot get past the enrolment page otherwise)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.parametrize("required", [True, False])
def test_the_demo_logins_say_when_two_factor_sign_in_is_required(db, settings, required) -> None:
    settings.VBQ_MFA_REQUIRED = required
    out = StringIO()
    call_command("seed_demo", logins_only=True, stdout=out)
    text = out.getvalue()
    assert ("QR code" in text and "admin and manager" in text) is required
