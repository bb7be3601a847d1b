package journal
import ("testing";"os";sqlite "modernc.org/sqlite")
func TestMain(m *testing.M){ if os.Getenv("FDS")!="" { sqlite.Fdatasync(true) }; c:=m.Run(); println("batches",dbgStats.batches,"ops",dbgStats.ops,"total",dbgStats.total.String(),"commit",dbgStats.commit.String()); os.Exit(c)}
