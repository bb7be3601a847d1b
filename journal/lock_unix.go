//go:build unix

package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on <dir>/payramd.lock for
// the life of the journal. SQLite's own locking would let two payramd
// processes share the file safely at the SQL level, but the second one's
// RecoverRunning would re-queue jobs the first is still running, so a second
// instance must refuse to start. The kernel drops the lock when the process
// dies, so a crash never leaves a stale lock behind.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, "payramd.lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		// A read-only data dir: lock an existing file read-only so that the
		// journal can still open for reads. When there is none, the
		// permission is the problem, not the missing file.
		permErr := err
		if f, err = os.Open(name); errors.Is(err, fs.ErrNotExist) {
			err = permErr
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("journal: %w (the user payramd runs as needs write access to %s)", err, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal: %s is in use by another payramd process", dir)
		}
		return nil, fmt.Errorf("journal: lock %s: %w", name, err)
	}
	return f, nil
}
