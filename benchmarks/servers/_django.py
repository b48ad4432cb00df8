"""Django configured in code for the Channels peers: no settings module, no database.

Channels needs Django set up before its consumers are imported, so each peer calls
`setup_django` at the top of its module, with its own extra settings (a channel layer).
"""

from __future__ import annotations

from typing import Any


def setup_django(**extra: Any) -> None:
    """Configure Django once per process (uvicorn's workers may import a peer twice), then set it up."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="benchmarks-only",
            ALLOWED_HOSTS=["*"],
            INSTALLED_APPS=["channels"],
            DATABASES={},
            USE_TZ=True,
            **extra,
        )
    django.setup()
