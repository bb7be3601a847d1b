package main

import (
	"fmt"
	"os"
	"syscall"
)

// journalStream reports whether f is the stream systemd connected to
// journald, as it says in $JOURNAL_STREAM ("device:inode"); a shell
// redirection or a pipe to something else is not.
func journalStream(f *os.File) bool {
	want := os.Getenv("JOURNAL_STREAM")
	if want == "" || f == nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino) == want
}
