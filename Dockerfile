# The privicore binary in a minimal image: engine, CLI and daemons (serve,
# storage-device, authenticator). Built static, on the pure Go SQLite driver.
#   docker build -t privicore .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/privicore ./cmd/privicore && mkdir -m 700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/privicore /usr/local/bin/privicore
# The data dir, private to the image's user (a named volume mounted there
# starts as a copy of it).
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot
ENTRYPOINT ["/usr/local/bin/privicore"]
CMD ["serve", "--addr", "0.0.0.0:8009", "--ws-addr", "-"]
