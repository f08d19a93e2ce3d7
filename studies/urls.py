"""The study managers' design pages (the study page itself is ``study`` in ``vbqweb.urls``)."""

from django.urls import path

from studies import casesets_views, views
from studies.receiver import views as receiver_views
from studies.uploads import views as upload_views

app_name = "studies"

urlpatterns = [
    path("new/", views.study_create, name="create"),
    path("<int:pk>/edit/", views.study_edit, name="edit"),
    path("<int:pk>/people/", views.study_people, name="people"),
    path("assignments/<int:pk>/remove/", views.assignment_remove, name="people_remove"),
    path("<int:pk>/reference/", views.study_reference, name="reference"),
    # Case-set upload and ingest (studies.uploads.views)
    path("<int:pk>/uploads/", upload_views.study_uploads, name="uploads"),
    path("<int:pk>/uploads/new", upload_views.upload_create_view, name="upload_create"),
    path("uploads/<uuid:public_id>/", upload_views.upload_report, name="upload_report"),
    path("uploads/<uuid:public_id>/status.json", upload_views.upload_status, name="upload_status"),
    path("uploads/<uuid:public_id>/chunk", upload_views.upload_chunk, name="upload_chunk"),
    path("uploads/<uuid:public_id>/finish", upload_views.upload_finish_view, name="upload_finish"),
    path("uploads/<uuid:public_id>/cancel", upload_views.upload_cancel_view, name="upload_cancel"),
    # STOW-RS into the study (studies.receiver.views): no trailing slash, as DICOMweb clients
    # append "/studies" to the base URL /studies/<pk>/dicomweb.
    path("<int:pk>/dicomweb/studies", receiver_views.stow_instances, name="stow"),
    path("<int:pk>/cases/", upload_views.study_cases, name="cases"),
    path("cases/<int:pk>/series/", upload_views.case_series, name="case_series"),
    # Reuse a case set of another study the manager also manages (studies.casesets_views)
    path("<int:pk>/cases/attach/", casesets_views.case_set_attach_view, name="case_set_attach"),
    path(
        "cases/attach/<uuid:public_id>/",
        casesets_views.case_set_attach_progress,
        name="case_set_attach_progress",
    ),
    path(
        "cases/attach/<uuid:public_id>/status.json",
        casesets_views.case_set_attach_status,
        name="case_set_attach_status",
    ),
]
