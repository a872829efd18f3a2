# Strata node image: a static binary on a small base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/strata ./cmd/strata

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/strata /strata
ENTRYPOINT ["/strata"]
CMD ["serve"]
