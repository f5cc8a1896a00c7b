# One image for every smartgrid function; FUNCTION picks functions/<FUNCTION>/main.py.
#   docker build -t smartgrid:dev --build-arg FUNCTION=ingest .
#   docker run --rm -p 8080:8080 -e FUNCTION=ingest smartgrid:dev
# Knative Serving sets PORT; without it the function listens on 8080.
# Untested here: the development machines have no Docker engine.
FROM python:3.11-slim

ARG FUNCTION=ingest
# SMARTGRID_SCHEMAS_DIR: `pip install .` puts shared/ in site-packages, away from the
# repo's schemas/. SMARTGRID_STATE_DIR: /app belongs to root, so the unprivileged user
# keeps `smartgrid up` state in /tmp.
ENV FUNCTION=${FUNCTION} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SMARTGRID_SCHEMAS_DIR=/app/schemas \
    SMARTGRID_STATE_DIR=/tmp/smartgrid

WORKDIR /app
COPY . .
RUN pip install . \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin smartgrid

USER 10001
EXPOSE 8080

# Shell form on purpose: ${FUNCTION} and ${PORT:-8080} expand when the container starts.
CMD functions-framework --asgi --source functions/${FUNCTION}/main.py --target handler --port ${PORT:-8080}
