"""WSGI entry point; gunicorn loads ``app:app`` (see gunicorn.conf.py)."""

import logging

from config import Config
from jimeng_api import create_app
from jimeng_api.extensions import start_background

logging.basicConfig(
    level=Config.LOG_LEVEL.upper(),
    format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
)

app = create_app()
start_background(app)  # each worker resumes the jobs in the store at boot
