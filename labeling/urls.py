from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("", views.projects, name="projects"),
    path("<slug:slug>/", views.vote_page, name="vote"),
    path("<slug:slug>/dashboard/", views.dashboard, name="dashboard"),
]
