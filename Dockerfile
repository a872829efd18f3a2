# Strata node image: a static binary on a small base.
#
# The Go version must follow go.mod's `go` line (go 1.26.8): bump both together.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/strata ./cmd/strata
RUN mkdir /out/data

# Runs as the unprivileged "nonroot" user (uid 65532), who cannot create
# folders under /: the data folder (STRATA_DATA_DIR=/data in
# docker-compose.yml) is made here, owned by that user. A named volume mounted
# on /data starts with this ownership.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/strata /strata
COPY --from=build --chown=65532:65532 /out/data /data
ENTRYPOINT ["/strata"]
CMD ["serve"]
