# paperbot's image: one image, two services (compose.yaml): `paperbot web` and `paperbot run`.
# The config file is mounted at /etc/paperbot/paperbot.yaml; secrets come from the
# environment at run time, never from the image.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PAPERBOT_CONFIG=/etc/paperbot/paperbot.yaml

# the package from this source tree (every dependency ships wheels: no compiler needed),
# the sources dropped afterwards
WORKDIR /tmp/paperbot-src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip install --no-cache-dir . \
    && rm -rf /tmp/paperbot-src

# a user without privileges; paperbot's relative paths (data/, outbox/) are under its home
RUN groupadd --system --gid 10001 paperbot \
    && useradd --system --uid 10001 --gid paperbot --home-dir /srv/paperbot --create-home paperbot
WORKDIR /srv/paperbot
COPY config/paperbot.yaml /etc/paperbot/paperbot.yaml
RUN mkdir data outbox && chown paperbot:paperbot data outbox
USER 10001:10001

# the store (the config's `database: data/paperbot.db`) lives here: keep it in a volume
VOLUME ["/srv/paperbot/data"]
EXPOSE 8000

# slim has no curl: the standard library asks the web app's /healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["paperbot"]
CMD ["web", "--host", "0.0.0.0", "--port", "8000"]
