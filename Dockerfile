# Production image: gunicorn serving dss.wsgi, static files collected, running as a non-root user.
# The task worker runs from the same image: python manage.py db_worker (see docker-compose.yml).
# GOV.UK Frontend's built files come from npm in a stage of their own; only they are copied.
FROM node:22-slim AS frontend
WORKDIR /frontend
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DSS_STATE_DIR=/tmp/dss-state \
    PORT=8000

WORKDIR /app
RUN useradd --create-home --uid 10001 dss

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
COPY --from=frontend /frontend/node_modules/govuk-frontend/dist node_modules/govuk-frontend/dist
# Settings need a key and a database URL to load; collectstatic uses neither.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=postgres://unused@localhost/unused \
    python manage.py collectstatic --noinput \
    && chown -R dss:dss /app

USER dss
EXPOSE 8000
# check_services stops the start with one line naming the setting when the database, the
# bucket or Redis does not answer.
CMD ["sh", "-c", "python manage.py check_services && exec gunicorn dss.wsgi --bind 0.0.0.0:${PORT} --workers ${GUNICORN_WORKERS:-3} --timeout ${GUNICORN_TIMEOUT:-120} --access-logfile -"]
