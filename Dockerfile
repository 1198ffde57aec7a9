# papertide: one image for web, worker and scheduler (the command picks the role).
# CPU torch by default; for GPU workers build with --build-arg TORCH_INDEX=<a CUDA wheel index>
# and run the worker with the NVIDIA runtime (see docker-compose.yml).
# A fixed Python patch release and Debian, so a rebuild gets the same base (bump on purpose).
FROM python:3.11.11-slim-bookworm AS base

ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PAPERTIDE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1

RUN useradd --create-home --uid 10001 papertide && mkdir /data && chown papertide /data
WORKDIR /app

# torch first, from the index chosen above, so the project install does not pull a CUDA build.
RUN pip install "${TORCH_SPEC}" --index-url "${TORCH_INDEX}"

COPY pyproject.toml requirements.lock README.md alembic.ini ./
COPY src ./src
COPY templates ./templates
COPY migrations ./migrations
# A regular (non-editable) install: the wheel carries templates/ and migrations/ inside the package.
# requirements.lock holds every dependency to the exact version the suite ran with.
RUN pip install -c requirements.lock . && rm -rf /app/src

USER papertide
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["papertide", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
