"""Template helpers of the catalog pages."""

from django import template

from catalog.rendering import png_url

register = template.Library()


@register.filter
def preview_url(image) -> str:
    """The cache-friendly preview URL of a cutout or mock image (see catalog.rendering.png_url)."""
    return png_url(image)
