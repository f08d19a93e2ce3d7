from django.urls import path

from studies import views

app_name = "studies"

urlpatterns = [
    path("<int:pk>/", views.study_detail, name="detail"),
]
