# One image for every promptline process; the command picks the role
# (serve, worker, migrate, admin). Used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY promptline ./promptline
COPY controlplane ./controlplane
COPY ingest ./ingest
COPY workers ./workers
COPY schemas ./schemas
COPY sql ./sql
COPY compare ./compare
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["promptline"]
CMD ["serve"]
