"""The study managers' design pages (the study page itself is ``study`` in ``vbqweb.urls``)."""

from django.urls import path

from studies import views

app_name = "studies"

urlpatterns = [
    path("new/", views.study_create, name="create"),
    path("<int:pk>/edit/", views.study_edit, name="edit"),
    path("<int:pk>/people/", views.study_people, name="people"),
    path("assignments/<int:pk>/remove/", views.assignment_remove, name="people_remove"),
    path("<int:pk>/reference/", views.study_reference, name="reference"),
]
