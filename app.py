"""WSGI entry point; gunicorn loads ``app:app`` (see gunicorn.conf.py)."""

import logging

from config import Config
from jimeng_api import create_app

logging.basicConfig(
    level=Config.LOG_LEVEL.upper(),
    format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
)

app = create_app()
