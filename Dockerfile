# explaind container: built exactly as on a developer machine (`make deps`, `make`,
# `make test`), then copied into a slim runtime image with only the shared libraries.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential make ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make deps && make -j"$(nproc)" && make test && install -Dm755 build/explaind /out/explaind

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libuv1 libopenblas0-pthread libprotobuf-c1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 explaind \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin explaind
COPY --from=build /out/explaind /usr/local/bin/explaind
COPY models/ /models/
ENV OPENBLAS_NUM_THREADS=1 EXPLAIND_LISTEN=0.0.0.0:8080 EXPLAIND_MODEL_DIR=/models
USER 10001:10001
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/explaind", "--healthcheck", "8080"]
ENTRYPOINT ["/usr/local/bin/explaind"]
CMD ["--listen", "0.0.0.0:8080", "--model-dir", "/models"]
