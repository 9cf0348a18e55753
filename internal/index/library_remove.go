package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RemoveLibrary deletes a library from the index: its items (with their
// search entries and artist links), its folders and its row, then derives
// the albums and artists again. It is for a library the administrator
// removed: the scanner never deletes what it cannot see, so an offline
// library keeps its items and only this removes them. A library the index
// does not hold is no error.
//
// Like the scanner's other calls, it ignores a read scope in ctx.
func (x *Index) RemoveLibrary(ctx context.Context, name string) error {
	if err := x.removeLibrary(ctx, name); err != nil {
		return fmt.Errorf("index: remove library %s: %w", name, err)
	}
	// In a transaction of its own, like after Apply: should it fail, the
	// stale mark written above makes the next Refresh do it.
	return x.Refresh(ctx)
}

func (x *Index) removeLibrary(ctx context.Context, name string) error {
	tx, err := x.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var lib int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM libraries WHERE name = ?`, name).Scan(&lib)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	// One statement per table, not applier.remove per item: a library of
	// 100,000 items would be 300,000 statements.
	const items = `SELECT i.id FROM items i JOIN folders f ON f.id = i.folder_id WHERE f.library_id = ?1`
	for _, q := range []string{
		`DELETE FROM items_fts WHERE rowid IN (` + items + `)`,
		`DELETE FROM item_artists WHERE item_id IN (` + items + `)`,
		`DELETE FROM items WHERE folder_id IN (SELECT id FROM folders WHERE library_id = ?1)`,
		`DELETE FROM folders WHERE library_id = ?1`,
		`DELETE FROM libraries WHERE id = ?1`,
	} {
		if _, err := tx.ExecContext(ctx, q, lib); err != nil {
			return err
		}
	}
	// Albums and artists are stale until Refresh, as after Apply.
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta (key, value) VALUES ('stale', '1')`); err != nil {
		return err
	}
	return tx.Commit()
}
