"""The audit log: ``/audit/`` (site admins) and ``/studies/<pk>/audit/`` (the study's managers)."""

from django.urls import path

from vbqweb.audit import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.site_log, name="site"),
    path("audit/events.csv", views.site_log_csv, name="site_csv"),
    path("studies/<int:pk>/audit/", views.study_log, name="study"),
    path("studies/<int:pk>/audit/events.csv", views.study_log_csv, name="study_csv"),
]
