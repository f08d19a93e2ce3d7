"""``{% dicom_receiver study %}``: where a PACS (C-STORE) or a script (STOW-RS) sends this study's
cases, for the study page of its managers.

Why a tag: the study page is the reading flow's view; what a PACS operator needs (the study's
called AE title, the receiver's host and port, the STOW-RS base URL) comes from the study and
the settings only, so it is rendered here without touching that view.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("studies/_dicom_receiver.html", takes_context=True)
def dicom_receiver(context: template.Context, study: Any) -> dict[str, Any]:
    request = context.get("request")
    host = settings.VBQ_DICOM_HOST
    stow = reverse("studies:stow", kwargs={"pk": study.pk}).removesuffix("/studies")
    if request is not None:
        host = host or request.get_host().rsplit(":", 1)[0]
        stow = request.build_absolute_uri(stow)
    return {
        "ae_title": study.ae_title,
        "host": host,
        "port": settings.VBQ_DICOM_PORT,
        "stow": stow,
        "study_pk": study.pk,
    }
