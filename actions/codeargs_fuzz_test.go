package actions

import (
	"strings"
	"testing"
)

// FuzzCodeArgs: the exec check's command-line readers never panic and
// never point outside argv, whatever the command (items separated by NUL
// in the input). It runs at config load, on every reload.
func FuzzCodeArgs(f *testing.F) {
	for _, seed := range []string{
		"perl\x00-lne\x00x", "ssh\x00-o\x00", "sqlite3\x00--\x00db", "env\x00-uS", "su\x00-c",
		"watch\x00-n", "awk\x00--\x00", "jq\x00--rawfile\x00t", "node\x00--eval=", "sh\x00-s", "python3\x00-m",
		"timeout\x0030\x00bash", "/usr/bin/time\x00-o\x00/tmp/sed\x00python3\x00-c\x00x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		argv := strings.Split(s, "\x00")
		if len(argv) > 64 {
			return
		}
		for _, h := range codeArgs(argv) {
			if h.index < 0 || h.index >= len(argv) || h.what == "" {
				t.Fatalf("codeArgs(%q) gave %+v", argv, h)
			}
		}
		if i := envSplitIndex(argv); i < -1 || i >= len(argv) {
			t.Fatalf("envSplitIndex(%q) = %d", argv, i)
		}
		_ = stdinProgram(argv)
	})
}
