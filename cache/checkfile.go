package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// FileReport is what CheckFile found in a healthy store file.
type FileReport struct {
	Vendors       int
	UsageRecords  int
	SchemaVersion uint64
}

// CheckFile checks a store file that no process is serving, read-only (it never writes, so it
// is safe on a backup or a suspect file): the tollgate marker and schema version, every bucket,
// bbolt's page-level consistency check, and that every vendor and usage record decodes.
func CheckFile(path string, timeout time.Duration) (FileReport, error) {
	var rep FileReport
	if _, err := os.Stat(path); err != nil {
		return rep, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return rep, classifyOpenError(path, err)
	}
	defer db.Close()
	err = viewFile(db, path, func(tx *bolt.Tx) error {
		if err := checkSchema(tx, path); err != nil {
			return err
		}
		rep.SchemaVersion = SchemaVersion
		for _, b := range allBuckets() {
			if tx.Bucket([]byte(b)) == nil {
				return tollgate.Errorf(tollgate.EUnsupported, "store %s: bucket %q missing", path, b)
			}
		}
		var errs []error
		for err := range tx.Check() {
			if len(errs) < 10 {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("store %s: bbolt consistency: %w", path, errors.Join(errs...))
		}
		err := tx.Bucket([]byte(bucketVendors)).ForEach(func(k, v []byte) error {
			var sub tollgate.Subscription
			if err := decodeSubscription(v, &sub); err != nil {
				return fmt.Errorf("store %s: vendor %q: %w", path, k, err)
			}
			rep.Vendors++
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketUsage)).ForEach(func(k, v []byte) error {
			var rec usageRecord
			if err := decodeUsage(v, &rec, nil); err != nil {
				return fmt.Errorf("store %s: usage of %q: %w", path, k, err)
			}
			rep.UsageRecords++
			return nil
		})
	})
	return rep, err
}

// BackupFile writes a consistent copy of a store file that no process is serving to w, opening
// it read-only. A running server holds the file's lock: back it up through the server instead
// (Store.Backup, GET /v1/admin/backup).
func BackupFile(path string, w io.Writer, timeout time.Duration) (int64, error) {
	db, err := openBolt(path, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return 0, classifyOpenError(path, err)
	}
	defer db.Close()
	var n int64
	err = viewFile(db, path, func(tx *bolt.Tx) error {
		if err := checkSchema(tx, path); err != nil {
			return err
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// viewFile runs fn in a read transaction over a file opened from outside (inspect, CheckFile,
// BackupFile), refusing a file shorter than its own meta page says first: bbolt maps the whole
// database and touching a page past the end of a truncated file is SIGBUS, which kills the
// process instead of producing an error. Any other memory fault while reading a damaged file
// is turned into an error as well.
func viewFile(db *bolt.DB, path string, fn func(tx *bolt.Tx) error) (err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = tollgate.Errorf(tollgate.EUnsupported, "store %s: not a tollgate store or corrupted (%v)", path, r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		if want := tx.Size(); fi.Size() < want {
			return tollgate.Errorf(tollgate.EUnsupported,
				"store %s: corrupted: the file is %d bytes, its meta page says %d (truncated?)", path, fi.Size(), want)
		}
		return fn(tx)
	})
}
