from django.urls import path

from uploads import views

app_name = "uploads"

urlpatterns = [
    path("", views.pipelines, name="pipelines"),
    # Before the pipeline pages: a pipeline's slug always holds a "-", "progress" does not.
    path("progress/<uuid:file_id>/", views.progress, name="progress"),
    path("<slug:slug>/", views.upload, name="upload"),
    path("<slug:slug>/versions/", views.history, name="history"),
    path("<slug:slug>/versions/<uuid:file_id>/restore/", views.restore, name="restore"),
    path("<slug:slug>/<uuid:file_id>/verify/", views.verify, name="verify"),
    path("<slug:slug>/<uuid:file_id>/processing/", views.processing, name="processing"),
    path("<slug:slug>/<uuid:file_id>/completed/", views.completed, name="completed"),
    path("<slug:slug>/<uuid:file_id>/failed/", views.failed, name="failed"),
]
