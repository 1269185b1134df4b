package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schemaName is what Config.Schema may be: a lower-case SQL identifier
// that needs no quoting.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// migrations create and evolve the schema; migration i (from 0) takes the
// schema to version i+1. Each runs in the transaction that records it, so
// a migration is applied entirely or not at all. %[1]s is the schema.
//
// Every table is keyed by (group_id, node_id): many groups and many nodes
// share one schema without seeing each other's rows. IDs are the uint64
// values of raftdata.GroupID and raftdata.NodeID stored bit for bit in bigint.
var migrations = []string{
	// Version 1.
	`CREATE TABLE %[1]s.nodes (
		group_id     bigint      NOT NULL,
		node_id      bigint      NOT NULL,
		owner        bytea       NOT NULL,
		term         bigint      NOT NULL DEFAULT 0,
		vote         bigint      NOT NULL DEFAULT 0,
		commit_index bigint      NOT NULL DEFAULT 0,
		first_index  bigint      NOT NULL DEFAULT 1,
		snapshot_id  bigint,
		opened_at    timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (group_id, node_id)
	);
	CREATE TABLE %[1]s.entries (
		group_id bigint   NOT NULL,
		node_id  bigint   NOT NULL,
		idx      bigint   NOT NULL,
		term     bigint   NOT NULL,
		kind     smallint NOT NULL,
		data     bytea    NOT NULL,
		PRIMARY KEY (group_id, node_id, idx)
	);
	CREATE SEQUENCE %[1]s.snapshot_ids;
	CREATE TABLE %[1]s.snapshots (
		group_id    bigint      NOT NULL,
		node_id     bigint      NOT NULL,
		snapshot_id bigint      NOT NULL,
		idx         bigint      NOT NULL,
		term        bigint      NOT NULL,
		membership  bytea       NOT NULL,
		bytes       bigint      NOT NULL DEFAULT 0,
		chunks      integer     NOT NULL DEFAULT 0,
		committed   boolean     NOT NULL DEFAULT false,
		created_at  timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (group_id, node_id, snapshot_id)
	);
	CREATE TABLE %[1]s.snapshot_chunks (
		group_id    bigint  NOT NULL,
		node_id     bigint  NOT NULL,
		snapshot_id bigint  NOT NULL,
		seq         integer NOT NULL,
		data        bytea   NOT NULL,
		PRIMARY KEY (group_id, node_id, snapshot_id, seq)
	);
	-- fence aborts the transaction it runs in unless the caller still owns
	-- the node's row: a store opened later for the same node took it over.
	CREATE FUNCTION %[1]s.fence(g bigint, n bigint, o bytea) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM 1 FROM %[1]s.nodes
			WHERE group_id = g AND node_id = n AND owner = o FOR SHARE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'raftkit: node % of group % was opened by another store', n, g
				USING ERRCODE = 'RK001';
		END IF;
	END $$;`,
}

// lockKey is the advisory lock that serializes migrations of one schema.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("raftkit/postgres migrate " + schema))
	return int64(h.Sum64())
}

// migrate brings the schema to the latest version. Several nodes opening at
// once are safe: each migrates under a transaction-scoped advisory lock, so
// one applies the missing versions and the others find them applied.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	q := pgx.Identifier{schema}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
			return fmt.Errorf("postgres: migrate: lock: %w", err)
		}
		// CREATE SCHEMA needs the CREATE privilege on the database even
		// when the schema exists: ask first, so a role that may only use an
		// existing schema can open it.
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q); err != nil {
				return fmt.Errorf("postgres: migrate: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`.schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("postgres: migrate: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+q+`.schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("postgres: migrate: reading version: %w", err)
		}
		if have > len(migrations) {
			return fmt.Errorf("%w: schema %s is at version %d, this package knows up to %d",
				ErrSchemaVersion, schema, have, len(migrations))
		}
		for v := have; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v], q)); err != nil {
				return fmt.Errorf("postgres: migrate to version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version) VALUES ($1)`, v+1); err != nil {
				return fmt.Errorf("postgres: migrate to version %d: %w", v+1, err)
			}
		}
		return nil
	})
}
