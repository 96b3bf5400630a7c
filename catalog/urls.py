from django.urls import path

from catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="home"),
    path("surveys/<slug:name>/", views.survey_detail, name="survey"),
    path("galaxies/<int:pk>/", views.galaxy_detail, name="galaxy"),
    path("spectra/<int:pk>/", views.spectrum_detail, name="spectrum"),
    path("spectra/<int:pk>.png", views.spectrum_png, name="spectrum-png"),
    path("spectra/<int:pk>/dla.png", views.spectrum_dla_png, name="spectrum-dla-png"),
    path("simulations/<int:pk>/", views.simulation_run_detail, name="simulation-run"),
    path("simulations/<int:pk>/timeline.png", views.simulation_timeline_png, name="simulation-timeline-png"),
    path("simulations/<int:pk>/timeline.csv", views.simulation_timeline_csv, name="simulation-timeline-csv"),
    path("cutouts/<int:pk>.png", views.cutout_png, name="cutout-png"),
    path("mock-images/<int:pk>.png", views.mock_image_png, name="mock-image-png"),
    path("cutouts/<int:pk>.fits", views.cutout_fits, name="cutout-fits"),
    path("spectra/<int:pk>.fits", views.spectrum_fits, name="spectrum-fits"),
    path("mock-images/<int:pk>.fits", views.mock_image_fits, name="mock-image-fits"),
]
