"""factory_boy factories for test data."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from readers.models import Reading
from studies.models import Assignment, Case, Instance, Role, Series, Study

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    name = factory.Sequence(lambda n: f"Study {n}")


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    study = factory.SubFactory(StudyFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.READER


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    study = factory.SubFactory(StudyFactory)
    label = factory.Sequence(lambda n: f"Case {n:03d}")
    study_instance_uid = factory.Sequence(lambda n: f"2.25.{1000 + n}")


class SeriesFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Series

    case = factory.SubFactory(CaseFactory)
    series_instance_uid = factory.Sequence(lambda n: f"2.25.{2000 + n}")
    description = "SAG T1"
    selected = True


class InstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instance

    series = factory.SubFactory(SeriesFactory)
    sop_instance_uid = factory.Sequence(lambda n: f"2.25.{3000 + n}")
    sop_class_uid = "1.2.840.10008.5.1.4.1.1.4"
    rows = 256
    columns = 256
    file = factory.LazyAttribute(lambda o: ContentFile(b"not read in this test", name="x.dcm"))


class ReadingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reading

    reader = factory.SubFactory(UserFactory)
    case = factory.SubFactory(CaseFactory)
    session = 1
