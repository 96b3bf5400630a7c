from django.urls import path

from catalog.api import views

app_name = "api"
urlpatterns = [
    path("surveys/", views.SurveyList.as_view(), name="survey-list"),
    path("surveys/<slug:name>/", views.SurveyDetail.as_view(), name="survey-detail"),
    path("galaxies/", views.GalaxyList.as_view(), name="galaxy-list"),
    path("galaxies/<int:pk>/", views.GalaxyDetail.as_view(), name="galaxy-detail"),
    path("spectra/", views.SpectrumList.as_view(), name="spectrum-list"),
]
