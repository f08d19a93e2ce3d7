"""The TOTP second factor (django-otp): who must have one, enrolment, verification, removal.

One TOTP device per user. Enrolment makes an unconfirmed device (its key shown once as a QR
code and as text) and confirms it with a code from the app, which proves the phone holds the
key; a confirmed device then replaces any older one. Wrong codes are slowed down by
django-otp's throttling (each failure doubles the wait) and a code is accepted once only.
A lost phone: a site admin deletes the device in /admin/ (OTP_TOTP › TOTP devices), and the
user enrols again at their next sign-in.
"""

from __future__ import annotations

from base64 import b32encode

import segno
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from studies.access import studies_managed_by

ENROLMENT_NAME = "enrolment"


def mfa_required_for(user: AbstractBaseUser) -> bool:
    """Study managers, site admins and staff (who reach /admin/) must use a second factor when
    ``VBQ_MFA_REQUIRED`` is on; readers may."""
    if not settings.VBQ_MFA_REQUIRED or not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False) or getattr(user, "is_staff", False):
        return True
    return studies_managed_by(user).exists()


def confirmed_device(user: AbstractBaseUser) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()


def enrolment_device(user: AbstractBaseUser) -> TOTPDevice:
    """The user's device being enrolled: the same one until confirmed (a reload of the page
    shows the same key), a new random key otherwise."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=ENROLMENT_NAME, confirmed=False)
    return device


def enrolment_confirm(*, request: HttpRequest, device: TOTPDevice, token: str) -> bool:
    """Confirm ``device`` with a code from the app; the session is then verified with it."""
    if not device.verify_token(token.strip()):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.name = "authenticator app"
        device.save(update_fields=["confirmed", "name"])
    session_verified(request, device)
    return True


def token_verify(*, request: HttpRequest, token: str) -> bool:
    """Check a code against the user's confirmed device; on success the session is verified."""
    device = confirmed_device(request.user)
    if device is None or not device.verify_token(token.strip()):
        return False
    session_verified(request, device)
    return True


def session_verified(request: HttpRequest, device: TOTPDevice) -> None:
    """Mark the session as verified by ``device``, under a new session key (the key an
    attacker may have planted before the second factor is worth nothing after it)."""
    request.session.cycle_key()
    otp_login(request, device)


def mfa_remove(*, request: HttpRequest) -> None:
    """Remove the user's devices (readers only: see ``mfa_required_for``)."""
    TOTPDevice.objects.filter(user=request.user).delete()
    request.session.pop(DEVICE_ID_SESSION_KEY, None)


def secret_text(device: TOTPDevice) -> str:
    """The key in base32, in groups of four, for typing into an app by hand."""
    key = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_svg(device: TOTPDevice) -> SafeString:
    """The ``otpauth://`` URL as an inline SVG QR code (no script, no image request: nothing
    the Content-Security-Policy has to allow, and the key never leaves the page)."""
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5, border=2, title="QR code of your authenticator key"
    )
    return mark_safe(svg)  # segno's own markup; the URL it encodes is only path data
