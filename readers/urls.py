from django.urls import path

from readers import views

app_name = "readers"

urlpatterns = [
    path("open/<int:case_pk>/<int:session>/", views.reading_open, name="open"),
    path("<int:pk>/", views.reading_detail, name="detail"),
    path("<int:pk>/submit/", views.reading_submit, name="submit"),
    path("<int:pk>/score.json", views.reading_score, name="score"),
    path("<int:pk>/rois.json", views.reading_rois, name="rois"),
    path("<int:pk>/submit.json", views.reading_submit_json, name="submit_json"),
]
