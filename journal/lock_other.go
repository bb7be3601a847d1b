//go:build !unix

package journal

import "os"

// lockDir is a no-op where flock is unavailable; see lock_unix.go.
func lockDir(dir string) (*os.File, error) { return nil, nil }
