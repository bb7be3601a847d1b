package actions

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// reapGroup waits for the group leader pid to exit without reaping it
// (WNOWAIT), then kills its process group. While the leader is unreaped its
// pid cannot be reused, so the kill cannot hit an unrelated group; this is
// how children the command left running in the background are cleaned up.
func reapGroup(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	_ = killGroup(pid)
}
