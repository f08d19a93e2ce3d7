"""How a study's form pages bind a form and answer when it did not validate, written once.

Every such page binds its form to the POST (a GET shows it unbound), acts and redirects when it
validates, and otherwise shows the page again: 200 with a fresh form, 400 with the errors of a
posted one. Why a module of its own: the design views (``studies.views``) and the upload views
(``studies.uploads.views``) both answer this way, and neither imports the other.
"""

from __future__ import annotations

from typing import Any

from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render


def posted(request: HttpRequest) -> QueryDict | None:
    """What to bind a page's form to: the POST, or ``None`` on a GET (the form stays unbound)."""
    return request.POST if request.method == "POST" else None


def form_page(request: HttpRequest, template: str, form: BaseForm, **context: Any) -> HttpResponse:
    """``template`` with ``form`` in its context: 400 when the form was posted, 200 when not.

    A posted form gets here only when it did not validate (a valid one has redirected).
    """
    status = 400 if form.is_bound else 200
    return render(request, template, {"form": form, **context}, status=status)
