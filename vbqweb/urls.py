"""Top-level URLs. Every view except the sign-in pages and the health check requires a login."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from readers import views as reader_views
from vbqweb import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Accounts (spec §7): Django's auth URLs under /accounts/, and the site's own (lockout, MFA,
    # invitations; vbqweb/accounts/). /login/ stays as an alias of /accounts/login/.
    path("accounts/", include("vbqweb.accounts.urls")),
    path(
        "login/",
        login_not_required(RedirectView.as_view(pattern_name="login", query_string=True)),
    ),
    path("admin/", admin.site.urls),
    path("studies/<int:pk>/", reader_views.study_detail, name="study"),
    path("studies/<int:pk>/", include("readers.analysis.urls")),
    path("studies/<int:pk>/", include("readers.adjudication.urls")),
    path("readings/", include("readers.urls")),
    path("studies/", include("studies.urls")),
    path("dicomweb/", include("readers.dicomweb.urls")),
    # The audit log: /audit/ (site admins), /studies/<pk>/audit/ (the study's managers).
    path("", include("vbqweb.audit.urls")),
]
