"""The test project as an ASGI application (tests/test_django.py runs it under uvicorn)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project_settings")
application = get_asgi_application()
