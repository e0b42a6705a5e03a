package db

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// InTx runs fn in one transaction of x and commits it; an error of fn
// rolls it back and is returned as fn returned it, so that the caller
// wraps it with its own context (and translates a violation if it wants).
// Every package's "begin, run, commit or roll back" is this one.
func InTx(ctx context.Context, x *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := x.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
