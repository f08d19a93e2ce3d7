from django.urls import path

from readers.analysis import views
from readers.analysis.download_views import readings_wide

app_name = "analytics"

urlpatterns = [
    path("agreement/", views.agreement, name="agreement"),
    path("agreement/recompute/", views.recompute, name="recompute"),
    path("agreement/status.json", views.analysis_status, name="status"),
    path("downloads/measurements.csv", views.measurements, {"fmt": "csv"}, "measurements_csv"),
    path("downloads/measurements.json", views.measurements, {"fmt": "json"}, "measurements_json"),
    # Wide downloads for SPSS/R/Excel (readers.analysis.download_views)
    path("downloads/readings-wide.csv", readings_wide, {"fmt": "csv"}, "readings_wide_csv"),
    path("downloads/vbq-by-reader.csv", readings_wide, {"fmt": "by_reader"}, "vbq_by_reader_csv"),
    path("downloads/readings.xlsx", readings_wide, {"fmt": "xlsx"}, "readings_xlsx"),
    path("downloads/statistics.csv", views.statistics, {"fmt": "csv"}, "statistics_csv"),
    path("downloads/statistics.json", views.statistics, {"fmt": "json"}, "statistics_json"),
    path("downloads/sr.zip", views.study_srs, name="study_srs"),
    path("readings/<uuid:reading_public_id>/sr.dcm", views.reading_sr, name="reading_sr"),
    path("report/", views.report, {"fmt": "html"}, "report_html"),
    path("report.pdf", views.report, {"fmt": "pdf"}, "report_pdf"),
]
