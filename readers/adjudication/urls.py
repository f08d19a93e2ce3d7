from django.urls import path

from readers.adjudication import views

app_name = "adjudication"

urlpatterns = [
    path("adjudication/", views.worklist, name="worklist"),
    path("adjudication/<int:case_pk>/<int:session>/", views.case, name="case"),
    path("adjudication/<int:case_pk>/<int:session>/accept/", views.accept, name="accept"),
    path("adjudication/<int:case_pk>/<int:session>/measure/", views.measure, name="measure"),
    path("review/<uuid:reading_public_id>/", views.review, name="review"),
]
