"""Voting pages: the project list, the keyboard-driven voting page and the staff dashboard."""

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from labeling import selectors, services
from labeling.models import Project


@login_required
@require_GET
def projects(request):
    rows = [
        (project, selectors.project_progress(project=project, days=1))
        for project in selectors.projects_for(request.user).distinct().order_by("slug")
    ]
    return render(request, "labeling/projects.html", {"rows": rows})


@login_required
@require_GET
def vote_page(request, slug: str):
    project = get_object_or_404(Project.objects.select_related("scheme_version__scheme", "survey"), slug=slug)
    services.check_classifier(project=project, classifier=request.user)
    context = {
        "project": project,
        "config": {
            "project": project.slug,
            "undoSeconds": project.undo_seconds,
            "scheme": selectors.scheme_layout(scheme_version=project.scheme_version),
        },
    }
    return render(request, "labeling/vote.html", context)


@staff_member_required
@require_GET
def dashboard(request, slug: str):
    project = get_object_or_404(Project.objects.select_related("scheme_version__scheme", "survey"), slug=slug)
    progress = selectors.project_progress(project=project)
    peak = max((d["votes"] for d in progress["votes_per_day"]), default=0)
    return render(
        request,
        "labeling/dashboard.html",
        {
            "project": project,
            "progress": progress,
            "peak": peak,
            "classifiers": selectors.classifier_stats(project=project),
        },
    )
