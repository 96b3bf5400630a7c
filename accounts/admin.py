from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class GalaxylabUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("galaxylab", {"fields": ("affiliation",)}),)
    list_display = ("username", "email", "affiliation", "is_staff", "is_active", "last_login")
    search_fields = ("username", "email", "first_name", "last_name", "affiliation")
