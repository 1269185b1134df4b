module github.com/raftkit/raftkit/guides

go 1.26.0

replace github.com/raftkit/raftkit => ..

replace github.com/raftkit/raftkit/adapters/metrics/prometheus => ../adapters/metrics/prometheus

replace github.com/raftkit/raftkit/adapters/network/nats => ../adapters/network/nats

replace github.com/raftkit/raftkit/adapters/storage/postgres => ../adapters/storage/postgres

replace github.com/raftkit/raftkit/adapters/storage/redis => ../adapters/storage/redis
