#!/usr/bin/env bash
# bench/ab.sh compares builds of the daemon under the same load, to tell a
# real change from the noise of a shared machine.
#
#   bench/ab.sh [-r ROUNDS] [-d DURATION] [-c CONNECTIONS] SERVER...
#
# SERVER is the path of a payramd binary, "bare" for a bare net/http handler,
# or "VAR=value,VAR2=value:PATH" to run a binary with environment variables.
# Each round runs every server once, in a new random order, on a fresh
# data_dir with the bench config (100 rules, fsync on), and drives it with
# bench/load's generator for DURATION at CONNECTIONS. It prints one line per
# run and then each server's median. Order matters on this kind of machine
# (the previous run's writeback, the host's neighbours), which is why it is
# shuffled; list the same binary twice to see how far the noise alone goes.
#
# Example: git worktree add /tmp/b main~1 && (cd /tmp/b && go build -o /tmp/old ./cmd/payramd)
#          go build -o /tmp/new ./cmd/payramd && bench/ab.sh -r 4 /tmp/old /tmp/new
set -euo pipefail

rounds=3 duration=10s conc=64
while getopts r:d:c: opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	d) duration=$OPTARG ;;
	c) conc=$OPTARG ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { sed -n '2,20p' "$0" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$(dirname "$0")/.." && go build -o "$work/load" ./bench/load)
addr=127.0.0.1:18390 admin=127.0.0.1:18391
ticks=$(getconf CLK_TCK)

run_one() { # $1: server spec; prints "req/s p50 p99 errors cpu_us_per_req"
	local spec=$1 envs="" bin=$1 pid
	if [[ $spec == *=*:* ]]; then envs=${spec%%:*} bin=${spec#*:}; fi
	rm -rf "$work/data"
	"$work/load" -print-config "$work/data" >"$work/cfg.yaml"
	sync
	if [ "$bin" = bare ]; then
		"$work/load" -serve bare -addr "$addr" >/dev/null 2>&1 &
	else
		env ${envs//,/ } PAYRAMD_LISTEN=$addr PAYRAMD_ADMIN_LISTEN=$admin \
			"$bin" run -c "$work/cfg.yaml" --log-format json >/dev/null 2>&1 &
	fi
	pid=$!
	for _ in $(seq 100); do # until it answers anything at all
		[ "$(curl -so /dev/null -w '%{http_code}' -m 1 "http://$addr/" || true)" != 000 ] && break
		sleep 0.1
	done
	local t0 t1 out rps
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	out=$("$work/load" -target "http://$addr/webhooks/payram" -duration "$duration" -c "$conc")
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	# out: "req/s N p50 X ms p99 Y ms errors E"
	rps=$(awk '{print $2}' <<<"$out")
	awk -v o="$out" -v t="$((t1 - t0))" -v hz="$ticks" -v d="${duration%s}" -v r="$rps" 'BEGIN {
		split(o, f, " "); printf "%s %s %s %s %.0f\n", f[2], f[4], f[7], f[10], t / hz * 1e6 / (r * d) }'
}

results=$work/results
: >"$results"
printf '%-40s %9s %9s %9s %6s %12s\n' server req/s p50_ms p99_ms errors cpu_us/req
for _ in $(seq "$rounds"); do
	while read -r spec; do
		line=$(run_one "$spec")
		echo "$spec $line" >>"$results"
		# shellcheck disable=SC2086
		printf '%-40s %9s %9s %9s %6s %12s\n' "$spec" $line
	done < <(printf '%s\n' "$@" | shuf)
done
echo "medians:"
bare_rps=$(awk '$1 == "bare"' "$results" | awk '{ print $2 }' | sort -n | awk '{ a[NR] = $1 } END { if (NR) print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
for spec in "$@"; do
	awk -v s="$spec" -v bare="${bare_rps:-0}" '$1 == s { n++; r[n]=$2; p[n]=$4; c[n]=$6 }
	function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	END { m = med(r, n); printf "%-40s req/s %.0f", s, m; if (bare > 0) printf " (%.2f of bare)", m / bare
		printf "  p99 %.2f ms  cpu %.0f us/req  (%d runs)\n", med(p, n), med(c, n), n }' "$results"
done
