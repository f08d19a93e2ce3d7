"""The accounts' own forms: a TOTP code, and a new person to invite (with their role)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator

from studies.models import Role


class TokenForm(forms.Form):
    """Six digits from the authenticator app."""

    token = forms.CharField(
        label="Code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_token(self) -> str:
        token = "".join(self.cleaned_data["token"].split())
        if not token.isdigit():
            raise forms.ValidationError("The code is the six digits your app shows.")
        return token


class InviteForm(forms.Form):
    """Someone who has no account yet: a username, their role in the study (a reader when the
    form does not say), and an address to mail the link to."""

    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    role = forms.ChoiceField(choices=Role.choices, initial=Role.READER, required=False)
    email = forms.EmailField(
        required=False,
        help_text="Optional: the link is mailed here. It is shown to you either way.",
    )

    def clean_role(self) -> str:
        return self.cleaned_data["role"] or Role.READER

    def clean_username(self) -> Any:
        username = self.cleaned_data["username"].strip()
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(
                f"{username} already has an account: add them with “Add a person” instead."
            )
        return username
