"""Classification schemes, labeling projects and classifiers' votes (built on the catalog)."""
