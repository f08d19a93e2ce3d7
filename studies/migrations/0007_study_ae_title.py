# Issue 15 item 3: each study's called AE title for the DICOM receiver (studies.receiver).

from django.db import migrations, models

import studies.models


def fill_ae_titles(apps, schema_editor):
    """Existing studies get a title each, before the column becomes unique."""
    Study = apps.get_model("studies", "Study")
    taken: set[str] = set()
    for study in Study.objects.all().only("pk"):
        title = studies.models.new_ae_title()
        while title in taken:
            title = studies.models.new_ae_title()
        taken.add(title)
        Study.objects.filter(pk=study.pk).update(ae_title=title)


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0006_study_settings_for_issues_13_14"),
    ]

    operations = [
        migrations.AddField(
            model_name="study",
            name="ae_title",
            field=models.CharField(max_length=16, null=True, editable=False),
        ),
        migrations.RunPython(fill_ae_titles, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="study",
            name="ae_title",
            field=models.CharField(
                default=studies.models.new_ae_title,
                editable=False,
                help_text="The AE title a PACS sends this study's cases to (the DICOM receiver).",
                max_length=16,
                unique=True,
                verbose_name="called AE title",
            ),
        ),
    ]
