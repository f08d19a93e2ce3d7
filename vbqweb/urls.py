"""Top-level URLs. Every view except login and the health check requires a login."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from readers import views as reader_views
from vbqweb import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("studies/<int:pk>/", reader_views.study_detail, name="study"),
    path("studies/<int:pk>/", include("readers.analysis.urls")),
    path("readings/", include("readers.urls")),
    path("studies/", include("studies.urls")),
    path("dicomweb/", include("readers.dicomweb.urls")),
]
