from django.urls import path

from catalog.api import dla, views

app_name = "api"
urlpatterns = [
    path("surveys/", views.SurveyList.as_view(), name="survey-list"),
    path("surveys/<slug:name>/", views.SurveyDetail.as_view(), name="survey-detail"),
    path("galaxies/", views.GalaxyList.as_view(), name="galaxy-list"),
    path("galaxies/<int:pk>/", views.GalaxyDetail.as_view(), name="galaxy-detail"),
    path("spectra/", views.SpectrumList.as_view(), name="spectrum-list"),
    path("dla/", dla.DLAList.as_view(), name="dla-list"),
    path("dla/scs", dla.ConeSearch.as_view(), name="dla-scs"),
    path("dla/releases/", dla.DLAReleaseList.as_view(), name="dla-release-list"),
    path("dla/<str:identifier>/", dla.DLADetail.as_view(), name="dla-detail"),
    path("sightlines/<int:plate>-<int:mjd>-<int:fiber>/", dla.SightlineDetail.as_view(), name="sightline-detail"),
]
