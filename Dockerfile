# One image for every promptline process; the command picks the role
# (serve, worker, migrate, admin). Used by docker-compose.yml.
#
# The release build: resolve's hot path compiled with mypyc (the build hook in
# pyproject.toml), so the wheel is built where a C compiler is, and installed in the slim
# image without one (the same Debian release in both, so the same C library).
FROM python:3.11-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY promptline ./promptline
COPY controlplane ./controlplane
COPY ingest ./ingest
COPY workers ./workers
COPY schemas ./schemas
COPY sql ./sql
COPY compare ./compare
COPY guard ./guard
COPY ui ./ui
RUN HATCH_BUILD_HOOK_ENABLE_MYPYC=1 pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
WORKDIR /app
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER nobody
ENTRYPOINT ["promptline"]
CMD ["serve"]
