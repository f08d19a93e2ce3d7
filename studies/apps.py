from django.apps import AppConfig


class StudiesConfig(AppConfig):
    """What is read and what comes out: studies, their cases and de-identified images."""

    name = "studies"
    verbose_name = "Studies"
