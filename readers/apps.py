from django.apps import AppConfig


class ReadersConfig(AppConfig):
    """Who reads and what they did: readings, their ROI sets and VBQ results."""

    name = "readers"
    verbose_name = "Readers"

    def ready(self) -> None:
        from readers import signals  # noqa: F401 - connects the receivers
