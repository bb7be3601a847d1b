#!/usr/bin/env bash
# bench/cpusplit.sh shows where the running daemon's CPU goes per webhook,
# measured with perf (kernel and user time alike), under bench/load's load.
#
#   bench/cpusplit.sh [-d DURATION] [-c CONNECTIONS]
#
# It builds payramd with symbols, starts it on a fresh data_dir with the
# bench config (100 rules, fsync on, a log action per match), drives it for
# DURATION at CONNECTIONS, records the middle of the run with `perf record
# -g`, and prints each part's share of the daemon's CPU, its kernel share,
# and microseconds of CPU per request (the process's user+system time from
# /proc over the whole run, divided by the requests answered).
#
# Go's own profiler is not used for this: on this VM it charges system
# calls (pwrite above all) about twice what perf measures.
#
# Needs perf (linux-tools) and perf_event_paranoid <= 2.
set -euo pipefail

duration=20s conc=64
while getopts d:c: opt; do
	case $opt in
	d) duration=$OPTARG ;;
	c) conc=$OPTARG ;;
	*) sed -n '2,16p' "$0" >&2; exit 2 ;;
	esac
done
command -v perf >/dev/null || { echo "cpusplit: perf is not installed" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$(dirname "$0")/.."
go build -o "$work/load" ./bench/load
go build -o "$work/payramd" ./cmd/payramd
"$work/load" -print-config "$work/data" >"$work/cfg.yaml"
addr=127.0.0.1:18392
PAYRAMD_LISTEN=$addr PAYRAMD_ADMIN_LISTEN=127.0.0.1:18393 \
	"$work/payramd" run -c "$work/cfg.yaml" --log-format json >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do
	curl -s -o /dev/null "http://$addr/" && break
	sleep 0.1
done

secs=${duration%s}
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
c0=$(cpu)
"$work/load" -target "http://$addr/webhooks/payram" -c "$conc" -duration "$duration" >"$work/load.out" &
lpid=$!
sleep $((secs / 4))
perf record -q -F 999 -g -p "$pid" -o "$work/perf.data" -- sleep $((secs / 2)) >/dev/null 2>&1
wait "$lpid"
c1=$(cpu)
cat "$work/load.out"
reqs=$(awk -v s="$secs" '{print int($2 * s)}' "$work/load.out")
perf script -i "$work/perf.data" 2>/dev/null | awk -v cpu="$(( (c1 - c0) * 1000000 / ticks ))" -v reqs="$reqs" '
# One sample per paragraph: a header line, then its frames, innermost first.
# A sample belongs to the first part whose function is on its stack.
BEGIN {
	n = split("journal.(*SQLite).run|SQLite writer (statements, WAL frames);" \
		"syncLoop|WAL fsync (syncer);" \
		"checkpointer|checkpoints;" \
		"daemon.(*Daemon).accept|handler: evaluate rules, hand to journal;" \
		"webhook.(*Handler).ServeHTTP|handler: read, verify, decode, log, answer;" \
		"net/http.(*conn).serve|net/http: parse request, write answer;" \
		"daemon.(*pool).exec|running the job and logging it;" \
		"daemon.(*pool).run|job dispatcher;" \
		"gcBgMarkWorker|garbage collector", parts, ";")
	for (i = 1; i <= n; i++) { split(parts[i], kv, "|"); pat[i] = kv[1]; name[i] = kv[2] }
	name[n + 1] = "scheduler, timers, other"
}
/^[^ \t]/ { if (frames) tally(); frames = ""; first = ""; next }
NF { if (first == "") first = $0; frames = frames "\n" $0 }
END { if (frames) tally(); report() }
function tally(   i, k) {
	k = n + 1
	for (i = 1; i <= n; i++) if (index(frames, pat[i])) { k = i; break }
	all++; cnt[k]++
	if (first ~ /kernel/) kern[k]++
}
function report(   i, per) {
	per = reqs > 0 ? cpu / reqs : 0
	printf "%.0f us of CPU per request (%d requests)\n\n", per, reqs
	printf "%-44s %6s %8s %8s\n", "part", "share", "kernel", "us/req"
	for (i = 1; i <= n + 1; i++)
		printf "%-44s %5.1f%% %7.1f%% %8.1f\n", name[i], 100 * cnt[i] / all, 100 * kern[i] / all, per * cnt[i] / all
}'
