"""People invited by a study's manager: a new account with no password, a role in the study
(reader by default; adjudicator or manager), and a one-time link that sets the password.

The link is Django's password-reset token under a salt of its own (a reset link is not an
invitation, nor the reverse). It is valid for ``PASSWORD_RESET_TIMEOUT`` and for one use: the
token is a hash of the account's password and last sign-in, both of which setting the
password changes. The account exists (and is assigned to the study) from the invitation on,
with an unusable password: nobody can sign in to it before the link is used.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from studies import services as study_services
from studies.models import Role, Study


class InviteTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "vbqweb.accounts.invites.InviteTokenGenerator"


invite_tokens = InviteTokenGenerator()


@transaction.atomic
def reader_invite(
    *, study: Study, username: str, email: str, role: str = Role.READER
) -> AbstractBaseUser:
    """Create the account (no usable password) and give it ``role`` in ``study`` (a reader
    unless said otherwise: a second manager or an adjudicator may have no account yet either).
    An unknown role is refused by ``assignment_add`` and no account is left behind."""
    user = get_user_model().objects.create_user(username=username, email=email or "")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    study_services.assignment_add(study=study, user=user, role=role)
    return user


def role_phrase(role: str) -> str:
    """The role with its article (a reader, an adjudicator, a study manager), as the mail and
    the page say it."""
    label = Role(role).label.lower()
    return f"{'an' if label[0] in 'aeiou' else 'a'} {label}"


def invite_path(user: AbstractBaseUser) -> str:
    """The one-time link's path (``accounts:invite_accept``)."""
    return reverse(
        "accounts:invite_accept",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": invite_tokens.make_token(user),
        },
    )


def invite_mail(
    *, user: AbstractBaseUser, study: Study, link: str, invited_by: str, role: str = Role.READER
) -> None:
    """Mail the link through Django's email backend (the console in the demo); the mail says
    the role, so that nobody sets a password for a role they did not expect."""
    context = {
        "user": user,
        "study": study,
        "link": link,
        "invited_by": invited_by,
        "role": role,
        "role_phrase": role_phrase(role),
    }
    subject = render_to_string("accounts/invite_subject.txt", context).strip()
    body = render_to_string("accounts/invite_email.txt", context)
    send_mail(subject, body, None, [user.email])
