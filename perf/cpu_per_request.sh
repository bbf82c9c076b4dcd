#!/usr/bin/env bash
# CPU time per request of a running service, of PostgreSQL and of Redis, over one wrk run.
#
#   perf/cpu_per_request.sh PORT PATTERN [deposit|read] [SECONDS]
#   perf/cpu_per_request.sh 5000 'wallet serve|spawn_main' deposit 5
#
# PATTERN is a `pgrep -f` pattern matching the service's processes (with `serve
# --workers N` the workers' command line is multiprocessing's `spawn_main`). Throughput
# on a shared, noisy machine moves by tens of per cent between runs; the CPU each request
# costs moves much less, so it is the figure to compare two versions of the code by.
# Reads /proc/<pid>/stat (user + system ticks) before and after 64 connections of wrk
# on one fresh wallet: DEPOSIT 1 (deposit) or GET of its balance (read).
set -euo pipefail
port=${1:?port}; pattern=${2:?pgrep pattern}; scenario=${3:-deposit}; seconds=${4:-5}
base=http://127.0.0.1:$port

ticks() {  # ticks PATTERN: user + system clock ticks of every process matching it
    local total=0 pid fields
    for pid in $(pgrep -f "$1"); do
        read -ra fields <"/proc/$pid/stat" || continue
        total=$((total + fields[13] + fields[14]))
    done
    echo "$total"
}

wallet=$(curl -sf -X POST "$base/api/v1/wallets" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
script=$(mktemp --suffix=.lua)
trap 'rm -f "$script"' EXIT
case $scenario in
    deposit)
        cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.body = '{"operationType":"DEPOSIT","amount":1}'
wrk.headers["Content-Type"] = "application/json"
LUA
        url=$base/api/v1/wallets/$wallet/operation ;;
    read) : >"$script"; url=$base/api/v1/wallets/$wallet ;;
    *) echo "scenario must be deposit or read" >&2; exit 2 ;;
esac

service0=$(ticks "$pattern"); postgres0=$(ticks 'postgres: '); redis0=$(ticks redis-server)
report=$(wrk -t1 -c64 -d"${seconds}s" -s "$script" "$url")
service1=$(ticks "$pattern"); postgres1=$(ticks 'postgres: '); redis1=$(ticks redis-server)

requests=$(awk '/requests in/ {print $1}' <<<"$report")
grep -E 'Requests/sec|Non-2xx' <<<"$report"
hz=$(getconf CLK_TCK)
python3 - "$requests" "$hz" $((service1 - service0)) $((postgres1 - postgres0)) $((redis1 - redis0)) <<'PY'
import sys
requests, hz, *ticks = (int(value) for value in sys.argv[1:])
names = ("service", "postgres", "redis")
print(f"requests={requests}", *(f"{name}_us/request={t / hz / requests * 1e6:.0f}" for name, t in zip(names, ticks)))
PY
