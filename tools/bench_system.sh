#!/usr/bin/env bash
# Benchmarks the whole system on this machine and writes docs/benchmarks.md
# and docs/latency.png. Builds optimised, starts a fresh sync service and
# gateway for every run, drives them over loopback with the load generator
# (tools/loadgen) at the standard sizes of the load-testing issue, and
# measures the ceiling, a bare Beast WebSocket echo server (tools/echo_server),
# with the same load generator. Scenario 3 runs as a curve (FANOUT_CURVE
# readers, each with the gateway on every CURVE_THREADS thread count, and
# against the echo server in broadcast mode), and writes docs/fanout.png.
# About ten minutes with the defaults.
#   tools/bench_system.sh
#   DURATION=3s SWEEP_DURATION=2s IDLE_SESSIONS=2000 tools/bench_system.sh   # quick check
# Run it on an otherwise idle machine: the load generator shares the CPUs
# with the servers, and so does everything else that runs.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}              # measurement window of a standard run
SWEEP_DURATION=${SWEEP_DURATION:-5s}   # window of each point of the plot
WARMUP=${WARMUP:-2s}
WRITERS=${WRITERS:-20}                 # scenarios 1 and 2
FANOUT_READERS=${FANOUT_READERS:-2000} # scenario 3 (its row in the targets)
FANOUT_CURVE=${FANOUT_CURVE:-"500 1000 2000 4000"}  # scenario 3's curve
FANOUT_RATE=${FANOUT_RATE:-100}
IDLE_SESSIONS=${IDLE_SESSIONS:-20000}  # scenario 4
STORM_CLIENTS=${STORM_CLIENTS:-64}     # scenario 5: sessions set up at once
SWEEP_CLIENTS=${SWEEP_CLIENTS:-"1 2 5 10 20 50 100"}
GATEWAY_THREADS=${GATEWAY_THREADS:-$(nproc)}  # the gateway's default
CURVE_THREADS=${CURVE_THREADS:-"1 2"}  # gateway threads of the curve and of 1, 2
LOADGEN_THREADS=${LOADGEN_THREADS:-1}
DOCS=${DOCS:-docs}

bash tools/setup.sh
bazel build -c opt //syncservice //gateway //tools/loadgen //tools/echo_server
bin=bazel-out/k8-opt/bin
[[ -x "$bin/tools/loadgen/loadgen" ]] || bin=$(bazel info -c opt bazel-bin)
# Copies, so a build started elsewhere during the run cannot swap them.
work=$(mktemp -d /tmp/bench_system.XXXXXX)
for b in syncservice/syncservice gateway/gateway tools/loadgen/loadgen tools/echo_server/echo_server; do
  cp "$bin/$b" "$work/"
done
mkdir -p "$work/json" "$DOCS"

# Every idle session is a socket in the load generator and one in the
# gateway (each process has its own limit).
want_fds=$((IDLE_SESSIONS + 1024))
hard_fds=$(ulimit -Hn)
if [[ "$hard_fds" == unlimited ]] || (( hard_fds >= want_fds )); then
  ulimit -n "$want_fds"
else
  ulimit -n "$hard_fds"
fi
fds=$(ulimit -n)
idle_note=""
if (( IDLE_SESSIONS > fds - 256 )); then
  idle_note="The open-file limit here is ${fds} (hard limit ${hard_fds}), so scenario 4 ran with $((fds - 256)) sessions instead of ${IDLE_SESSIONS}; memory per session is a slope and barely depends on the count."
  IDLE_SESSIONS=$((fds - 256))
fi

sync_pid="" gateway_pid="" echo_pid=""
stop_pid() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$gateway_pid"; stop_pid "$sync_pid"; stop_pid "$echo_pid"
}
trap cleanup EXIT

# Prints the "host:port" a child announced with "LISTENING host:port".
wait_listening() {
  local file=$1 pid=$2 line
  for _ in $(seq 300); do
    line=$(grep -m1 '^LISTENING ' "$file" 2>/dev/null || true)
    if [[ -n "$line" ]]; then echo "${line#LISTENING }"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench_system: process $pid did not start; see $file and its log" >&2
  return 1
}

store_count=0
start_system() {
  # Durability on: each start gets a fresh SQLite store (STORE=memory to
  # measure without it).
  local store=${STORE:-sqlite:$work/store-$((++store_count)).db}
  "$work/syncservice" --listen=127.0.0.1:0 \
    --schema=syncservice/config/demo_schema.json \
    --scopes=syncservice/config/demo_scopes.json \
    --store="$store" ${SYNC_FLAGS:-} \
    >"$work/sync.out" 2>"$work/sync.log" &
  sync_pid=$!
  sync_addr=$(wait_listening "$work/sync.out" "$sync_pid")
  "$work/gateway" --port=0 --sync_service="$sync_addr" \
    --threads="$GATEWAY_THREADS" >"$work/gateway.out" 2>"$work/gateway.log" &
  gateway_pid=$!
  gateway_addr=$(wait_listening "$work/gateway.out" "$gateway_pid")
}

stop_system() {
  stop_pid "$gateway_pid"; stop_pid "$sync_pid"
  gateway_pid="" sync_pid=""
}

# run NAME LOADGEN-FLAGS...: one loadgen run against a fresh system.
run() {
  local name=$1; shift
  start_system
  echo "== $name: loadgen $*" | tee -a "$work/tables.txt"
  "$work/loadgen" --url="ws://$gateway_addr/" \
    --pids="gateway:$gateway_pid,syncservice:$sync_pid" \
    --threads="$LOADGEN_THREADS" --warmup="$WARMUP" \
    --json_out="$work/json/$name.json" "$@" | tee -a "$work/tables.txt" ||
    echo "bench_system: $name reported failures (see the table)" >&2
  echo "$*" >"$work/json/$name.args"
  stop_system
}

# run_echo NAME LOADGEN-FLAGS...: one loadgen run against the echo server.
run_echo() {
  local name=$1; shift
  echo "== $name: loadgen $*" | tee -a "$work/tables.txt"
  "$work/loadgen" --url="ws://$echo_addr/" --pids="echo_server:$echo_pid" \
    --threads="$LOADGEN_THREADS" --warmup="$WARMUP" \
    --json_out="$work/json/$name.json" "$@" | tee -a "$work/tables.txt" ||
    echo "bench_system: $name reported failures (see the table)" >&2
  echo "$*" >"$work/json/$name.args"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

# The ceiling: a bare Beast echo server, as many threads as the gateway.
"$work/echo_server" --port=0 --threads="$GATEWAY_THREADS" >"$work/echo.out" 2>"$work/echo.log" &
echo_pid=$!
echo_addr=$(wait_listening "$work/echo.out" "$echo_pid")
for n in $SWEEP_CLIENTS; do
  run_echo "echo-$n" --scenario=echo --clients="$n" --duration="$SWEEP_DURATION"
done
run_echo echo-std --scenario=echo --clients="$WRITERS" --duration="$DURATION"
run_echo echo_storm --scenario=echo_storm --clients="$STORM_CLIENTS" --duration="$DURATION"
stop_pid "$echo_pid"; echo_pid=""

# Latency against load.
for n in $SWEEP_CLIENTS; do
  run "writers-$n" --scenario=writers --clients="$n" --duration="$SWEEP_DURATION"
done
for n in $SWEEP_CLIENTS; do
  (( n >= 2 )) || continue
  run "shared-$n" --scenario=shared --clients="$n" --duration="$SWEEP_DURATION"
done

# run_broadcast NAME THREADS LOADGEN-FLAGS...: one loadgen run against a
# fresh echo server in broadcast mode with THREADS threads.
run_broadcast() {
  local name=$1 threads=$2; shift 2
  "$work/echo_server" --port=0 --threads="$threads" --broadcast \
    >"$work/echo.out" 2>"$work/echo.log" &
  echo_pid=$!
  echo_addr=$(wait_listening "$work/echo.out" "$echo_pid")
  run_echo "$name" "$@"
  stop_pid "$echo_pid"; echo_pid=""
}

# Scenario 3 as a curve: readers against gateway threads, and the same
# load on a bare Beast broadcast server.
for n in $FANOUT_CURVE; do
  for t in $CURVE_THREADS; do
    GATEWAY_THREADS=$t run "fanout-$n-t$t" --scenario=fanout --clients="$n" --rate="$FANOUT_RATE" --duration="$DURATION"
    run_broadcast "broadcast-$n-t$t" "$t" --scenario=echo_fanout --clients="$n" --rate="$FANOUT_RATE" --duration="$DURATION"
  done
done

# The five scenarios at their standard sizes (scenario 3 is the curve's
# point at FANOUT_READERS readers and GATEWAY_THREADS threads, if it has one).
run s1 --scenario=writers --clients="$WRITERS" --duration="$DURATION"
run s2 --scenario=shared --clients="$WRITERS" --duration="$DURATION"
if [[ -f "$work/json/fanout-$FANOUT_READERS-t$GATEWAY_THREADS.json" ]]; then
  cp "$work/json/fanout-$FANOUT_READERS-t$GATEWAY_THREADS.json" "$work/json/s3.json"
  cp "$work/json/fanout-$FANOUT_READERS-t$GATEWAY_THREADS.args" "$work/json/s3.args"
else
  run s3 --scenario=fanout --clients="$FANOUT_READERS" --rate="$FANOUT_RATE" --duration="$DURATION"
fi
# Scenarios 1 and 2 on each thread count of the curve.
for t in $CURVE_THREADS; do
  GATEWAY_THREADS=$t run "s1-t$t" --scenario=writers --clients="$WRITERS" --duration="$DURATION"
  GATEWAY_THREADS=$t run "s2-t$t" --scenario=shared --clients="$WRITERS" --duration="$DURATION"
done
run s4 --scenario=idle --sessions="$IDLE_SESSIONS" --duration=5s
run s5 --scenario=storm --clients="$STORM_CLIENTS" --duration="$DURATION"

# What durability costs: scenarios 1 and 2 again with the store relaxed
# (committed, not yet fsynced, when acknowledged) and with no store at all.
SYNC_FLAGS=--store_sync=false run s1-relaxed --scenario=writers --clients="$WRITERS" --duration="$DURATION"
SYNC_FLAGS=--store_sync=false run s2-relaxed --scenario=shared --clients="$WRITERS" --duration="$DURATION"
STORE=memory run s1-memory --scenario=writers --clients="$WRITERS" --duration="$DURATION"
STORE=memory run s2-memory --scenario=shared --clients="$WRITERS" --duration="$DURATION"

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- docs/latency.png ----
for kind in echo writers shared; do
  : >"$work/$kind.dat"
  for n in $SWEEP_CLIENTS; do
    f="$work/json/$kind-$n.json"
    [[ -f "$f" ]] || continue
    jq -r --arg n "$n" '"\($n) \(.replies.per_s) \(.reply_latency_ms.p50) \(.reply_latency_ms.p99)"' "$f" >>"$work/$kind.dat"
  done
done
gnuplot <<EOF
set terminal pngcairo size 1200,560 font ",10"
set output "$DOCS/latency.png"
set multiplot layout 1,2 title "Closed-loop clients over loopback, $(nproc) cores, $started"
set logscale x
set xlabel "clients (closed loop)"
set grid
set key top left
set logscale y
set ylabel "reply latency (ms)"
set title "latency against load"
plot "$work/echo.dat"    using 1:4 with linespoints lw 2 lc 1 title "Beast echo p99", \\
     "$work/echo.dat"    using 1:3 with linespoints dt 2 lc 1 title "Beast echo p50", \\
     "$work/writers.dat" using 1:4 with linespoints lw 2 lc 2 title "1: own scope each, p99", \\
     "$work/writers.dat" using 1:3 with linespoints dt 2 lc 2 title "1: own scope each, p50", \\
     "$work/shared.dat"  using 1:4 with linespoints lw 2 lc 3 title "2: one shared scope, p99", \\
     "$work/shared.dat"  using 1:3 with linespoints dt 2 lc 3 title "2: one shared scope, p50"
unset logscale y
set ylabel "requests per second"
set yrange [0:*]
set title "throughput (changesets/s, or echoes/s)"
plot "$work/echo.dat"    using 1:2 with linespoints lw 2 lc 1 title "Beast echo", \\
     "$work/writers.dat" using 1:2 with linespoints lw 2 lc 2 title "1: own scope each", \\
     "$work/shared.dat"  using 1:2 with linespoints lw 2 lc 3 title "2: one shared scope"
unset multiplot
EOF

# ---- docs/fanout.png ----
plots_rate="" plots_lat=""
lc=1
for t in $CURVE_THREADS; do
  for kind in fanout broadcast; do
    : >"$work/$kind-t$t.dat"
    for n in $FANOUT_CURVE; do
      f="$work/json/$kind-$n-t$t.json"
      [[ -f "$f" ]] || continue
      jq -r --arg n "$n" '"\($n) \(.deliveries.per_s) \(.delivery_latency_ms.p50) \(.delivery_latency_ms.p99) \(.delivery_latency_ms.p999)"' "$f" >>"$work/$kind-t$t.dat"
    done
    label="gateway, $t thread(s)"
    [[ "$kind" == broadcast ]] && label="Beast broadcast, $t thread(s)"
    width=2; [[ "$kind" == broadcast ]] && width=1
    plots_rate+="\"$work/$kind-t$t.dat\" using 1:2 with linespoints lw $width lc $lc title \"$label\", "
    plots_lat+="\"$work/$kind-t$t.dat\" using 1:4 with linespoints lw $width lc $lc title \"$label, p99\", "
    plots_lat+="\"$work/$kind-t$t.dat\" using 1:3 with linespoints dt 2 lc $lc title \"$label, p50\", "
    lc=$((lc + 1))
  done
done
gnuplot <<EOF
set terminal pngcairo size 1200,560 font ",10"
set output "$DOCS/fanout.png"
set multiplot layout 1,2 title "One writer at ${FANOUT_RATE} changesets/s, N readers, over loopback, $(nproc) cores, $started"
set xlabel "readers"
set grid
set key top left
set ylabel "deliveries per second"
set yrange [0:*]
set title "deliveries/s (offered: ${FANOUT_RATE} x readers)"
plot ${plots_rate} ${FANOUT_RATE} * x with lines dt 3 lc 0 title "offered"
set logscale y
set yrange [*:*]
set ylabel "writer-to-reader latency (ms)"
set title "delivery latency"
plot ${plots_lat%, }
unset multiplot
EOF

# ---- docs/benchmarks.md ----
j() { jq -r "$2" "$work/json/$1.json"; }
fmt() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
meets() { awk -v v="$1" -v t="$2" -v d="$3" 'BEGIN { if ((d == "min" && v >= t) || (d == "max" && v <= t)) print "yes"; else print "**no**" }'; }
# "name total% (kernel k%)" for each process of a run.
cpu() {
  j "$1" '[.cpu_percent as $c | .cpu_system_percent as $s | $c | keys_unsorted[] | "\(.) \($c[.]|round)% (kernel \($s[.]|round)%)"] | join(", ")'
}
load() { j "$1" '"\(.load_average.start) → \(.load_average.end)"'; }
switches() {
  j "$1" '[.context_switches_per_s | to_entries[] | "\(.key) \(.value|round)"] | join(", ")'
}
lat() { j "$1" ".$2 | \"\\(.p50) / \\(.p99) / \\(.p999)\""; }
cmdline() {
  local target="--url=ws://<gateway>/ --pids=gateway:<pid>,syncservice:<pid>"
  [[ "$1" == echo* ]] && target="--url=ws://<echo_server>/ --pids=echo_server:<pid>"
  echo "loadgen $target --threads=$LOADGEN_THREADS --warmup=$WARMUP $(cat "$work/json/$1.args")"
}

cores=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem_total=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo " (with uncommitted changes)" || true)
loaded=$(awk -v l="${load_before%% *}" -v c="$cores" 'BEGIN { print (l > 0.5 * c) ? "yes" : "no" }')

echo1=$(j echo-std .replies.per_s)
s1=$(j s1 .replies.per_s); s1p99=$(j s1 .reply_latency_ms.p99)
s2=$(j s2 .replies.per_s); s2d=$(j s2 .deliveries.per_s); s2p99=$(j s2 .reply_latency_ms.p99)
s3d=$(j s3 .deliveries.per_s); s3p99=$(j s3 .delivery_latency_ms.p99)
s3ceiling=""  # against the broadcast server at scenario 3's size and threads
if [[ -f "$work/json/broadcast-$FANOUT_READERS-t$GATEWAY_THREADS.json" ]]; then
  s3b=$(j "broadcast-$FANOUT_READERS-t$GATEWAY_THREADS" .deliveries.per_s)
  s3ceiling="$(pct "$s3d" "$s3b") of the Beast broadcast server: $(fmt "$s3b")/s"
fi
big=${FANOUT_CURVE##* }  # the curve's largest point
bigrun="fanout-$big-t$GATEWAY_THREADS"
bigp99_text="not run" bigp99_met="" bigratio_text="not run" bigratio_met=""
if [[ -f "$work/json/$bigrun.json" ]]; then
  bigp99=$(j "$bigrun" .delivery_latency_ms.p99)
  bigh1=$(j "$bigrun" .delivery_latency_first_half_ms.p999)
  bigh2=$(j "$bigrun" .delivery_latency_second_half_ms.p999)
  bigratio=$(awk -v a="$bigh2" -v b="$bigh1" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
  bigp99_text="p99 ${bigp99} ms"
  bigp99_met=$(meets "$bigp99" 250 max)
  bigratio_text="${bigh2} / ${bigh1} ms = ${bigratio}"
  bigratio_met=$(meets "$bigratio" 2 max)
fi
s4=$(j s4 .bytes_per_session); s4kb=$(awk -v b="$s4" 'BEGIN { printf "%.1f", b / 1024 }')
s5=$(j s5 .sessions.per_s)
echo_storm=$(j echo_storm .sessions.per_s)
s2frames=$(awk -v a="$s2" -v b="$s2d" 'BEGIN { print a + b }')
s3possible=$(awk -v r="$FANOUT_RATE" -v n="$FANOUT_READERS" 'BEGIN { print r * n }')
s3want=$(awk -v p="$s3possible" 'BEGIN { print 0.95 * p }')

{
cat <<EOF
# Benchmarks

Measured by \`tools/bench_system.sh\` on ${started}. Every figure comes from
the load generator (\`tools/loadgen\`), which speaks only the Jetstream
protocol, running on the same machine as the servers and talking to them
over loopback. A fresh sync service and gateway are started for every run.
The ceiling is a bare Boost.Beast WebSocket echo server
(\`tools/echo_server\`) measured by the same load generator, so each figure
can be read as a fraction of what Beast itself does here.

EOF
if [[ "$loaded" == yes ]]; then
cat <<EOF
> **The machine was busy during this run** (load average ${load_before} at the
> start, ${load_after} at the end, on ${cores} cores): other work competed for
> the CPUs with the servers and the load generator. Treat every figure as a
> lower bound and re-run \`tools/bench_system.sh\` on a quiet machine.

EOF
fi
cat <<EOF
Where a figure misses its target, [profiling.md](profiling.md) shows what
bounds it (callgrind profiles, system calls, context switches) and what
would change it.

## Machine and versions

| | |
| --- | --- |
| CPU | ${cores} × ${cpu_model} (\`nproc\` = ${cores}) |
| memory | ${mem_total} |
| kernel | $(uname -r) |
| load average (1, 5, 15 min) | before ${load_before}; after ${load_after} |
| open-file limit | ${fds} |
| commit | ${commit}${dirty} |
| compiler | $(g++ --version | head -1) |
| Bazel | $(pkgver bazel-bootstrap) (bazel-bootstrap), \`-c opt\` |
| Boost (Beast, Asio) | $(pkgver libboost-dev) |
| gRPC | $(pkgver libgrpc++-dev) |
| Protobuf | $(pkgver libprotobuf-dev) |
| Abseil | $(pkgver libabsl-dev) |
| RapidJSON | $(pkgver rapidjson-dev) |
| gateway | \`--threads=${GATEWAY_THREADS}\`, other flags default |
| load generator | \`--threads=${LOADGEN_THREADS}\`, warm-up ${WARMUP}, window ${DURATION} (plot points ${SWEEP_DURATION}) |

## Against the targets

Targets are for the 2-core machine with the load generator on it.
"Ceiling" divides by the echo server's figure at the same number of
clients (for scenario 5: WebSocket connections per second it accepts).

| # | scenario | target | measured | met | ceiling |
| --- | --- | --- | --- | --- | --- |
| 1 | ${WRITERS} writers, own scope each | ≥ 25,000 changesets/s | $(fmt "$s1") changesets/s | $(meets "$s1" 25000 min) | $(pct "$s1" "$echo1") of $(fmt "$echo1") echoes/s |
| 1 | | p99 ≤ 5 ms | p99 ${s1p99} ms | $(meets "$s1p99" 5 max) | echo p99 $(j echo-std .reply_latency_ms.p99) ms |
| 2 | ${WRITERS} writers, one scope | ≥ 15,000 changesets/s | $(fmt "$s2") changesets/s | $(meets "$s2" 15000 min) | $(pct "$s2" "$echo1") |
| 2 | | ≥ 280,000 deliveries/s | $(fmt "$s2d") deliveries/s | $(meets "$s2d" 280000 min) | frames written/s: $(pct "$s2frames" "$echo1") of echo's |
| 2 | | p99 ≤ 5 ms | p99 ${s2p99} ms | $(meets "$s2p99" 5 max) | |
| 3 | 1 writer at ${FANOUT_RATE}/s, ${FANOUT_READERS} readers | ≥ 95% of the $(fmt "$s3possible") offered: $(fmt "$s3want") deliveries/s | $(fmt "$s3d") deliveries/s ($(pct "$s3d" "$s3possible")) | $(meets "$s3d" "$s3want" min) | ${s3ceiling} |
| 3 | | p99 ≤ 50 ms | p99 ${s3p99} ms | $(meets "$s3p99" 50 max) | |
| 3 | 1 writer at ${FANOUT_RATE}/s, ${big} readers | p99 ≤ 250 ms | ${bigp99_text} | ${bigp99_met} | |
| 3 | | no unbounded growth: p99.9 of the window's second half ≤ 2 × the first half's | ${bigratio_text} | ${bigratio_met} | |
| 4 | $(j s4 .ready) idle sessions | ≤ 20 KB per session | ${s4kb} KiB per session | $(meets "$s4" 20480 max) | |
| 5 | connect storm, ${STORM_CLIENTS} at a time | ≥ 5,000 sessions/s | $(fmt "$s5") sessions/s | $(meets "$s5" 5000 min) | $(pct "$s5" "$echo_storm") of $(fmt "$echo_storm") connections/s |

One writer at ${FANOUT_RATE} changesets/s to N readers offers
${FANOUT_RATE} × N deliveries/s. Scenario 3's ceiling column compares
with the echo server in broadcast mode on as many threads, driven with the
same frames ([the curve](#fan-out-curve)). For scenario 2 the echo server
has no fan-out, so its ceiling column compares WebSocket frames written
per second: the gateway's replies plus deliveries against the echo
server's echoes (each of which also costs it a read).

## The runs

Latencies are p50 / p99 / p99.9 in milliseconds. CPU is the share of one
core each process used during the window (200% is both cores), with the
part spent in the kernel (system calls, loopback TCP, wake-ups) in
brackets. Load is the machine's one-minute load average as the window
opened and closed; above ${cores}, other work competed for the cores.

| run | throughput | latency | CPU | context switches/s | load | errors |
| --- | --- | --- | --- | --- | --- | --- |
| 1: writers | $(fmt "$s1") changesets/s | $(lat s1 reply_latency_ms) | $(cpu s1) | $(switches s1) | $(load s1) | $(j s1 '.errors | "\(.fragment + .protocol + .disconnects + .setup)"') |
| 2: shared | $(fmt "$s2") changesets/s, $(fmt "$s2d") deliveries/s | reply $(lat s2 reply_latency_ms); delivery $(lat s2 delivery_latency_ms) | $(cpu s2) | $(switches s2) | $(load s2) | $(j s2 '.errors | "\(.fragment + .protocol + .disconnects + .setup)"') |
| 3: fan-out | $(fmt "$s3d") deliveries/s ($(fmt "$(j s3 .replies.per_s)") changesets/s written) | writer to reader $(lat s3 delivery_latency_ms) | $(cpu s3) | $(switches s3) | $(load s3) | $(j s3 '.errors | "\(.fragment + .protocol + .disconnects + .setup)"') |
| 4: idle | $(j s4 .ready) sessions set up in $(j s4 .setup_s) s | | | | $(load s4) | $(j s4 '.errors | "\(.fragment + .protocol + .disconnects + .setup)"') |
| 5: storm | $(fmt "$s5") sessions/s | connect to ScopeState $(lat s5 setup_latency_ms) | $(cpu s5) | $(switches s5) | $(load s5) | $(j s5 '.errors | "\(.fragment + .protocol + .disconnects + .setup)"') |
| echo, ${WRITERS} clients | $(fmt "$echo1") echoes/s | $(lat echo-std reply_latency_ms) | $(cpu echo-std) | $(switches echo-std) | $(load echo-std) | $(j echo-std '.errors | "\(.protocol + .disconnects + .setup)"') |
| echo storm | $(fmt "$echo_storm") connections/s | connect to open $(lat echo_storm setup_latency_ms) | $(cpu echo_storm) | $(switches echo_storm) | $(load echo_storm) | |

<a id="fan-out-curve"></a>

## Fan-out: scenario 3 as a curve

![deliveries and latency against readers](fanout.png)

One writer at ${FANOUT_RATE} changesets/s; every reader receives every
change, so N readers are offered ${FANOUT_RATE} × N deliveries/s. Each
size runs with the gateway on each thread count (\`--threads\`), and
against the echo server with \`--broadcast\` on as many threads: the
design of Beast's chat example (one shared copy of each message posted to
every connection's strand, a write queue per connection), read by the
same load generator with the same frames, so a plain Beast server under
the same load. The second half of the window against the first shows
whether a backlog grows. Errors count disconnects too: sessions the
gateway sheds under overload (4097 \`server-overloaded\`) would show there.

| readers | offered/s | server | threads | deliveries/s | of offered | p50 / p99 / p99.9 ms | p99.9 first / second half ms | CPU | errors |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
for n in $FANOUT_CURVE; do
  for t in $CURVE_THREADS; do
    for kind in fanout broadcast; do
      name="$kind-$n-t$t"
      [[ -f "$work/json/$name.json" ]] || continue
      offered=$(awk -v r="$FANOUT_RATE" -v n="$n" 'BEGIN { print r * n }')
      server=gateway; [[ "$kind" == broadcast ]] && server="Beast broadcast"
      echo "| $n | $(fmt "$offered") | $server | $t | $(fmt "$(j "$name" .deliveries.per_s)") | $(pct "$(j "$name" .deliveries.per_s)" "$offered") | $(lat "$name" delivery_latency_ms) | $(j "$name" '"\(.delivery_latency_first_half_ms.p999) / \(.delivery_latency_second_half_ms.p999)"') | $(cpu "$name") | $(j "$name" '.errors | "\(.fragment + .protocol + .disconnects + .setup)"') |"
    done
  done
done
cat <<EOF

## Gateway threads: scenarios 1 and 2

The runs of rows 1 and 2 again, with the gateway on each thread count.

| threads | 1: changesets/s, p50 / p99 ms | 2: changesets/s, deliveries/s, p50 / p99 ms | CPU (1; 2) |
| --- | --- | --- | --- |
EOF
for t in $CURVE_THREADS; do
  [[ -f "$work/json/s1-t$t.json" && -f "$work/json/s2-t$t.json" ]] || continue
  echo "| $t | $(fmt "$(j "s1-t$t" .replies.per_s)"), $(j "s1-t$t" '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') | $(fmt "$(j "s2-t$t" .replies.per_s)"), $(fmt "$(j "s2-t$t" .deliveries.per_s)"), $(j "s2-t$t" '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') | $(cpu "s1-t$t"); $(cpu "s2-t$t") |"
done
cat <<EOF

Scenario 4, resident memory (VmRSS) before the sessions connected and after
they all had fetched \`Canvas\` and idled for 5 s:

| process | before | after | per session |
| --- | --- | --- | --- |
EOF
jq -r --argjson n "$(j s4 .ready)" '.processes[] | "| \(.name) | \(.rss_before_kb) KiB | \(.rss_after_kb) KiB | \(((.rss_after_kb - .rss_before_kb) * 1024 / $n) | round) bytes |"' "$work/json/s4.json"
cat <<EOF
| together | | | $(printf '%.0f' "$s4") bytes (${s4kb} KiB) |

VmRSS counts user-space memory only; the kernel's socket buffers for the
connections are not in it. ${idle_note}

## What durability costs

Scenarios 1 and 2 with the default store (SQLite, a reply waits for the
fsync of its group commit), with \`--store_sync=false\` (a reply waits for
the commit, not the fsync), and with \`--store=memory\` (nothing kept).

| store | 1: changesets/s, p50 / p99 ms | 2: changesets/s, p50 / p99 ms |
| --- | --- | --- |
| SQLite, durable (default) | $(fmt "$s1"), $(j s1 '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') | $(fmt "$s2"), $(j s2 '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') |
| SQLite, relaxed | $(fmt "$(j s1-relaxed .replies.per_s)"), $(j s1-relaxed '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') | $(fmt "$(j s2-relaxed .replies.per_s)"), $(j s2-relaxed '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') |
| memory only | $(fmt "$(j s1-memory .replies.per_s)"), $(j s1-memory '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') | $(fmt "$(j s2-memory .replies.per_s)"), $(j s2-memory '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"') |

## Latency against load

![reply latency against load](latency.png)

Closed-loop clients: each sends its next request when the previous reply
arrives, so more clients means more load until the servers saturate, after
which latency grows and throughput does not.

| clients | echo: echoes/s, p50 / p99 ms | 1 (own scopes): changesets/s, p50 / p99 ms | 2 (one scope): changesets/s, p50 / p99 ms |
| --- | --- | --- | --- |
EOF
for n in $SWEEP_CLIENTS; do
  row="| $n"
  for kind in echo writers shared; do
    f="$work/json/$kind-$n.json"
    if [[ -f "$f" ]]; then
      row+=" | $(fmt "$(jq -r .replies.per_s "$f")"), $(jq -r '"\(.reply_latency_ms.p50) / \(.reply_latency_ms.p99)"' "$f")"
    else
      row+=" | "
    fi
  done
  echo "$row |"
done
cat <<EOF

## Command lines

Every run: \`$work/...\` copies of the \`bazel build -c opt\` binaries; the
sync service started as \`syncservice --listen=127.0.0.1:0
--schema=syncservice/config/demo_schema.json
--scopes=syncservice/config/demo_scopes.json
--store=sqlite:<a fresh file>\` (the durability rows as stated there), the gateway as \`gateway
--port=0 --sync_service=<sync service> --threads=${GATEWAY_THREADS}\`, the
echo server as \`echo_server --port=0 --threads=${GATEWAY_THREADS}\`. Then:

| run | load generator |
| --- | --- |
EOF
for name in s1 s2 s3 s4 s5 echo-std echo_storm; do
  echo "| $name | \`$(cmdline "$name")\` |"
done
echo "| curve | \`$(cmdline "fanout-${FANOUT_CURVE%% *}-t${CURVE_THREADS%% *}" | sed 's/--clients=[0-9]* /--clients=<n> /')\` for n in ${FANOUT_CURVE}, the gateway with \`--threads=<t>\` for t in ${CURVE_THREADS}; the same with \`--scenario=echo_fanout\` against \`echo_server --broadcast --threads=<t>\` |"
echo "| threads | \`$(cmdline "s1-t${CURVE_THREADS%% *}")\` and likewise \`--scenario=shared\`, the gateway with \`--threads=<t>\` for t in ${CURVE_THREADS} |"
echo "| plot points | \`$(cmdline writers-1 | sed 's/--clients=1 /--clients=<n> /')\` for n in ${SWEEP_CLIENTS}, and likewise \`--scenario=shared\` (n ≥ 2) and \`--scenario=echo\` |"
cat <<EOF

Produced by: \`$(env | grep -E '^(DURATION|SWEEP_DURATION|WARMUP|WRITERS|FANOUT_READERS|FANOUT_RATE|IDLE_SESSIONS|STORM_CLIENTS|SWEEP_CLIENTS|GATEWAY_THREADS|CURVE_THREADS|FANOUT_CURVE|LOADGEN_THREADS)=' | tr '\n' ' ')tools/bench_system.sh\`
EOF
} >"$DOCS/benchmarks.md"

echo
echo "bench_system: wrote $DOCS/benchmarks.md, $DOCS/latency.png and $DOCS/fanout.png (tables and JSON of every run in $work)"
