"""The project's user model: classifiers, staff and admins are all users."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who logs in: a classifier voting on galaxies, or staff running the platform."""

    affiliation = models.CharField(max_length=200, blank=True, help_text="Institute or team, shown to project staff.")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
