from django.urls import path

from labeling import api

app_name = "labeling-api"
urlpatterns = [
    path("projects/", api.ProjectList.as_view(), name="project-list"),
    path("projects/<slug:slug>/next/", api.NextSubject.as_view(), name="next"),
    path("projects/<slug:slug>/subjects/<int:galaxy_id>/", api.SubjectDetail.as_view(), name="subject"),
    path("projects/<slug:slug>/votes/", api.VoteCreate.as_view(), name="vote-create"),
    path("projects/<slug:slug>/votes/undo/", api.VoteUndo.as_view(), name="vote-undo"),
    path("projects/<slug:slug>/skips/", api.SkipCreate.as_view(), name="skip-create"),
    path("projects/<slug:slug>/retire/", api.SubjectsRetire.as_view(), name="retire"),
    path("votes/", api.VoteList.as_view(), name="vote-list"),
    path("galaxies/<int:galaxy_id>/fractions/", api.GalaxyFractions.as_view(), name="galaxy-fractions"),
]
