"""The Django test app's models are imported by tests/orm/test_django.py once Django is
configured, not collected (for doctests) before it."""

collect_ignore = ["djangoapp/models.py"]
