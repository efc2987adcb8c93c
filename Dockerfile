# jimeng-api: gunicorn + gevent on python:3.11-slim (after gunicorn's
# examples/http2_gevent/Dockerfile). Build from the repo root:
#   docker build -t jimeng-api .
# Settings are env vars (config.py); see deploy/README.md and
# deploy/docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROMETHEUS_MULTIPROC_DIR=/run/jimeng-api/metrics \
    XDG_RUNTIME_DIR=/run/jimeng-api

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
# gevent/greenlet ship manylinux wheels, so no compiler is needed.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY app.py config.py gunicorn.conf.py ./
COPY jimeng_api/ ./jimeng_api/

# Numeric uid so orchestrators (runAsNonRoot) can verify it. /run/jimeng-api
# holds gunicorn's control socket ($XDG_RUNTIME_DIR; the user has no home) and
# the metrics dir (compose mounts a tmpfs over it, emptied per start).
RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin jimeng \
    && mkdir -p /run/jimeng-api/metrics \
    && chown -R 10001:10001 /run/jimeng-api
USER 10001:10001

EXPOSE 8000

# slim images have no curl: probe /ping with the stdlib (honours $PORT)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ.get('PORT', '8000'), timeout=4)"]

# gunicorn finishes in-flight requests on SIGTERM (up to GUNICORN_GRACEFUL_TIMEOUT,
# 630 s); give the container longer than that: docker stop -t 660 / compose's
# stop_grace_period. SIGINT/SIGQUIT would drop them.
STOPSIGNAL SIGTERM
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
