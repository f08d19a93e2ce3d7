"""The accounts' own pages: account security (password, second factor), TOTP enrolment and
verification, and inviting a reader. Django's password views are used as they are (urls.py).
Thin: forms validate, ``mfa`` and ``invites`` act.
"""

from __future__ import annotations

from smtplib import SMTPException
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import PasswordResetConfirmView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from studies.access import study_for_manager
from studies.form_pages import form_page, posted
from vbqweb.accounts import invites, mfa
from vbqweb.accounts.forms import InviteForm, TokenForm


def _next_url(request: HttpRequest) -> str:
    """Where to go after the second factor: the page asked for, if it is one of this site."""
    url = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if url and safe else reverse("home")


@require_http_methods(["GET"])
def security(request: HttpRequest) -> HttpResponse:
    """The user's password and second factor, and what the site asks of them."""
    return render(
        request,
        "accounts/security.html",
        {
            "device": mfa.confirmed_device(request.user),
            "required": mfa.mfa_required_for(request.user),
            "form": TokenForm(),
        },
    )


@require_http_methods(["GET", "POST"])
def mfa_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code."""
    if mfa.confirmed_device(request.user) is not None and not request.user.is_verified():
        return redirect("accounts:mfa_verify")  # a device exists: prove it before replacing it
    device = mfa.enrolment_device(request.user)
    form = TokenForm(posted(request))
    if form.is_valid():
        if mfa.enrolment_confirm(request=request, device=device, token=form.cleaned_data["token"]):
            messages.success(request, "Two-factor sign-in is on: you will be asked for a code.")
            return redirect(_next_url(request))
        form.add_error("token", "That code is not right. Check the clock of your phone.")
    return form_page(
        request,
        "accounts/mfa_setup.html",
        form,
        qr_svg=mfa.qr_svg(device),
        secret=mfa.secret_text(device),
        required=mfa.mfa_required_for(request.user),
        next=_next_url(request),
    )


@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in, for users with a device."""
    if request.user.is_verified() or mfa.confirmed_device(request.user) is None:
        return redirect(_next_url(request))
    form = TokenForm(posted(request))
    if form.is_valid():
        if mfa.token_verify(request=request, token=form.cleaned_data["token"]):
            return redirect(_next_url(request))
        form.add_error(
            "token", "That code is not right (after several wrong codes, wait a little)."
        )
    return form_page(request, "accounts/mfa_verify.html", form, next=_next_url(request))


@require_POST
def mfa_remove(request: HttpRequest) -> HttpResponse:
    """Turn the second factor off (readers only), with a current code."""
    if mfa.confirmed_device(request.user) is None:
        messages.info(request, "Two-factor sign-in is not on.")
        return redirect("accounts:security")
    if mfa.mfa_required_for(request.user):
        messages.error(request, "Study managers and site admins must keep two-factor sign-in.")
        return redirect("accounts:security")
    form = TokenForm(request.POST)
    if form.is_valid() and mfa.confirmed_device(request.user).verify_token(
        form.cleaned_data["token"]
    ):
        mfa.mfa_remove(request=request)
        messages.success(request, "Two-factor sign-in is off.")
        return redirect("accounts:security")
    messages.error(request, "That code is not right: two-factor sign-in stays on.")
    return redirect("accounts:security")


@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, pk: int) -> HttpResponse:
    """A study's manager creates an account with a role in the study (reader, adjudicator or
    manager) and gets its one-time set-password link."""
    study = study_for_manager(request.user, pk)
    form = InviteForm(posted(request))
    if form.is_valid():
        role = form.cleaned_data["role"]
        user = invites.reader_invite(
            study=study,
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            role=role,
        )
        link = request.build_absolute_uri(invites.invite_path(user))
        mailed = False
        if user.email:
            try:
                invites.invite_mail(
                    user=user,
                    study=study,
                    link=link,
                    invited_by=request.user.get_username(),
                    role=role,
                )
                mailed = True
            except (OSError, SMTPException):  # the account exists: the link still works
                messages.error(request, "The mail could not be sent: give them the link.")
        return render(
            request,
            "accounts/invite_done.html",
            {
                "study": study,
                "invited": user,
                "link": link,
                "mailed": mailed,
                "role_phrase": invites.role_phrase(role),
            },
        )
    return form_page(request, "accounts/invite.html", form, study=study)


class InviteAcceptView(PasswordResetConfirmView):
    """Django's set-password step, for an invitation's token (``invites.invite_tokens``)."""

    token_generator = invites.invite_tokens
    template_name = "accounts/invite_accept.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password is set: sign in with it.")
        return response
