# syntax=docker/dockerfile:1
# raterd and judgesim in one small image. Build: docker build -t raterd:dev .
# The default entrypoint is raterd; run judgesim with --entrypoint judgesim.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/raterd ./cmd/judgesim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/raterd /out/judgesim /usr/local/bin/
USER nonroot:nonroot
# 9464: raterd /metrics, /healthz, /readyz. 8000: judgesim's OpenAI-compatible API.
EXPOSE 9464 8000
ENTRYPOINT ["raterd"]
CMD ["run", "--config", "/etc/raterd/raterd.yaml"]
