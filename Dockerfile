# syntax=docker/dockerfile:1
# jimeng-api: gunicorn + gevent on python:3.11-slim-bookworm, as uid 10001.
#   docker build -t jimeng-api .                     # the product (last stage)
#   docker build --target demo -t jimeng-api:demo .  # + the offline simulator
# Settings are env vars (config.py). How to run it: README "Docker" and
# docker-compose.yml. tests/test_docker_image.py builds this file's tree
# (same COPY rules, same user) and starts the service from it.

# The base image, by tag: a rebuild picks up Debian's and Python's fixes, and a
# changed base. To pin it by digest, take the tag's multi-arch index digest from
# `docker buildx imagetools inspect python:3.11-slim-bookworm` ("Digest:") and
# build with --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>,
# or write it here (README "Docker"); tests/test_docker_image.py accepts both.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=dev
LABEL org.opencontainers.image.title="jimeng-api" \
      org.opencontainers.image.description="OpenAI-compatible API for Jimeng (即梦) image generation" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/data \
    PROMETHEUS_MULTIPROC_DIR=/run/jimeng-api/metrics \
    XDG_RUNTIME_DIR=/run/jimeng-api

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
# Wheels only: no compiler in the image, and a missing wheel fails the build.
# requirements.txt is the hashed lock (`make lock`): pip checks every wheel's
# sha256 and refuses a package that is not pinned in it.
COPY requirements.txt ./
RUN pip install --no-cache-dir --only-binary=:all: --require-hashes -r requirements.txt

# The product, owned by root and read-only for the service.
COPY LICENSE app.py config.py gunicorn.conf.py ./
COPY serving/ ./serving/
COPY jimeng_api/ ./jimeng_api/

# Numeric uid so orchestrators (runAsNonRoot) can verify it. Writable for it:
# /app/data (the job store, DATA_DIR: mount a volume there) and /run/jimeng-api
# (gunicorn's control socket and the metrics dir; compose mounts a tmpfs there).
RUN useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin jimeng \
    && mkdir -p /run/jimeng-api/metrics /app/data \
    && chown -R 10001:10001 /run/jimeng-api /app/data
VOLUME ["/app/data"]
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

# The offline demo (docker compose --profile demo): the product plus the
# simulator of Jimeng, started with `python -m simulator`. Never the default.
FROM runtime AS demo
COPY simulator/ ./simulator/

# The product: what `docker build .` and `docker compose up` build.
FROM runtime AS product
