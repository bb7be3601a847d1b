//go:build unix && !linux

package actions

// reapGroup does nothing where waitid(WNOWAIT) is unavailable: the group is
// still killed on timeout (Cmd.Cancel), but children a command leaves running
// after a normal exit are not.
func reapGroup(int) {}
