# Production image for the web, worker and beat services (see docker-compose.yml).
# The same locked dependencies as scripts/setup (uv sync --frozen), without the dev group.

# Stage 1: the reader's viewer (Cornerstone3D bundled by esbuild into static/dist/, with its
# decode worker and codec .wasm files), from the committed package-lock.json, as scripts/setup
# does. static/dist/ is git-ignored and .dockerignore'd: the image never ships a stale bundle.
FROM node:20-bookworm-slim AS viewer
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY static/src ./static/src
RUN npm run build

# Stage 2: the Django site and the Celery worker.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=vbqweb.settings_production \
    VBQ_VAR_DIR=/var/lib/vbq \
    VBQ_STATIC_ROOT=/app/staticfiles \
    VBQ_BIND=0.0.0.0:8000

WORKDIR /app
# WeasyPrint (the PDF report) needs Pango and a font.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY manage.py ./
COPY vbqweb ./vbqweb
COPY studies ./studies
COPY readers ./readers
COPY templates ./templates
COPY static ./static
COPY --from=viewer /build/static/dist ./static/dist
# collectstatic needs settings, not secrets: a throw-away key for this one build step.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --noinput -v 0

# /var/lib/vbq: local media and uploads when VBQ_STORAGE is not s3 (one machine only); with
# compose everything is in S3 and the container keeps nothing but temporary files.
RUN useradd --system --uid 1000 --home /app vbq && mkdir -p /var/lib/vbq \
    && chown vbq /var/lib/vbq && chmod 700 /var/lib/vbq
USER vbq
EXPOSE 8000
CMD ["gunicorn", "-c", "vbqweb/gunicorn_conf.py"]
