from django.urls import path

from readers import views

app_name = "readers"

urlpatterns = [
    path("open/<int:case_pk>/<int:session>/", views.reading_open, name="open"),
    path("<uuid:public_id>/", views.reading_detail, name="detail"),
    path("<uuid:public_id>/submit/", views.reading_submit, name="submit"),
    path("<uuid:public_id>/score.json", views.reading_score, name="score"),
    path("<uuid:public_id>/rois.json", views.reading_rois, name="rois"),
    path("<uuid:public_id>/submit.json", views.reading_submit_json, name="submit_json"),
    path("<uuid:public_id>/timing.json", views.reading_timing, name="timing"),
    path("<uuid:public_id>/next/", views.reading_next, name="next"),
]
