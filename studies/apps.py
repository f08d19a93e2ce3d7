from django.apps import AppConfig


class StudiesConfig(AppConfig):
    """What is read and what comes out: studies, their cases and de-identified images."""

    name = "studies"
    verbose_name = "Studies"

    def ready(self) -> None:
        from studies import erasure  # noqa: F401 - connects the stored files' erasure
