module github.com/raftkit/raftkit/bench

go 1.26.0

replace github.com/raftkit/raftkit => ..

replace github.com/raftkit/raftkit/adapters/network/nats => ../adapters/network/nats

replace github.com/raftkit/raftkit/adapters/storage/postgres => ../adapters/storage/postgres

replace github.com/raftkit/raftkit/adapters/storage/redis => ../adapters/storage/redis

require (
	github.com/jackc/pgx/v5 v5.12.0
	github.com/nats-io/nats-server/v2 v2.15.2
	github.com/nats-io/nats.go v1.55.0
	github.com/raftkit/raftkit v0.0.0-00010101000000-000000000000
	github.com/raftkit/raftkit/adapters/network/nats v0.0.0-00010101000000-000000000000
	github.com/raftkit/raftkit/adapters/storage/postgres v0.0.0-00010101000000-000000000000
	github.com/raftkit/raftkit/adapters/storage/redis v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/antithesishq/antithesis-sdk-go v0.9.0-default-no-op // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.3 // indirect
	github.com/nats-io/nkeys v0.4.17 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
