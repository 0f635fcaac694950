# syntax=docker/dockerfile:1
# Estacionate production image: one image runs every process of the Procfile.
#   api     (default CMD)  gunicorn -c config/gunicorn.py wsgi:app
#   worker                 celery -A workers.celery_app:celery worker ...
#   beat                   celery -A workers.celery_app:celery beat ...
#   release                flask --app app db upgrade
# docker-compose.prod.yml shows all of them wired together. Configuration comes only from the
# environment (see config/settings.py); production refuses to start with missing or development keys.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    APP_ENV=production \
    PORT=8000

# An unprivileged user owns nothing but its writable directories; the code stays root-owned.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/estacionate/beat \
    && chown app:app /var/lib/estacionate/beat

WORKDIR /app

# Runtime dependencies only (pinned, every one a binary wheel); requirements-dev.txt stays out.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY app/ ./app/
COPY workers/ ./workers/
COPY config/ ./config/
COPY migrations/ ./migrations/
COPY wsgi.py Procfile ./

USER 10001:10001

EXPOSE 8000

# Liveness of the API process (slim has no curl). Compose overrides it for worker and beat.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

CMD ["gunicorn", "-c", "config/gunicorn.py", "wsgi:app"]
