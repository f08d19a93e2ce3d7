"""A random public id for uploads, so that URLs do not carry the sequential pk (issue 12).

Three steps, because a callable default is evaluated once for ``AddField``: every existing row
would get the same uuid and the unique index could not be built. So: add the column nullable,
give each existing row its own uuid4, then make it unique and non-null.
"""

import uuid

from django.db import migrations, models


def fill_public_ids(apps, schema_editor):
    model = apps.get_model("studies", "Upload")
    for pk in model.objects.filter(public_id__isnull=True).values_list("pk", flat=True).iterator():
        model.objects.filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0004_upload_sending_moves_to_the_outbox"),
    ]

    operations = [
        migrations.AddField(
            model_name="upload",
            name="public_id",
            field=models.UUIDField(editable=False, null=True),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="upload",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
