#!/usr/bin/env bash
# The syncservice binary as scripts and end-to-end tests use it: binds port
# 0 and announces "METRICS ip:port" (its /metrics endpoint) and then
# "LISTENING host:port" on stdout, exits 0 on SIGTERM, and
# exits non-zero with a message naming the file and scope on a bad config.
set -euo pipefail

bin=syncservice/syncservice
tmp=${TEST_TMPDIR:-$(mktemp -d)}

fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. LISTENING line, then a clean shutdown on SIGTERM.
mkfifo "$tmp/out"
"$bin" --listen=127.0.0.1:0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
exec 3<"$tmp/out"
# By default the metrics endpoint is on a free loopback port, announced
# first as "METRICS ip:port".
if ! read -r -t 60 line <&3; then
  kill "$pid" 2>/dev/null || true
  cat "$tmp/err" >&2
  fail "no METRICS line"
fi
[[ "$line" =~ ^METRICS\ 127\.0\.0\.1:([0-9]+)$ ]] || fail "unexpected line: $line"
metrics_port=${BASH_REMATCH[1]}
if ! read -r -t 60 line <&3; then
  kill "$pid" 2>/dev/null || true
  cat "$tmp/err" >&2
  fail "no LISTENING line"
fi
[[ "$line" =~ ^LISTENING\ 127\.0\.0\.1:([0-9]+)$ ]] || fail "unexpected line: $line"
port=${BASH_REMATCH[1]}
(( port > 0 )) || fail "port $port"
# /metrics answers in Prometheus text format.
exec 4<>"/dev/tcp/127.0.0.1/$metrics_port"
printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n' >&4
metrics=$(cat <&4)
exec 4<&-
[[ "$metrics" == "HTTP/1.1 200 OK"* ]] || fail "metrics: $metrics"
grep -q "^jetstream_sync_scopes_loaded 2" <<<"$metrics" || fail "metrics: $metrics"
grep -q "scopes=\[Canvas,ChatRoom\] templates=\[canvas/\*,chat/\*\]" "$tmp/err" ||
  fail "no startup log line: $(cat "$tmp/err")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
exec 3<&-
(( rc == 0 )) || fail "exit code $rc after SIGTERM"
grep -q "syncservice stopped" "$tmp/err" || fail "no clean stop: $(cat "$tmp/err")"
# With no configuration, scopes are kept in ./jetstream-data/jetstream.db.
[[ -s jetstream-data/jetstream.db ]] || fail "no default store in $PWD/jetstream-data"

# 2. A bad scopes file: non-zero exit and a message naming file and scope.
cat >"$tmp/bad_scopes.json" <<'JSON'
{"scopes": [{"name": "Broken", "root": {"clsName": "Canvas", "properties": {"nme": "x"}}}]}
JSON
rc=0
"$bin" --listen=127.0.0.1:0 --scopes="$tmp/bad_scopes.json" >"$tmp/out2" 2>"$tmp/err2" || rc=$?
(( rc != 0 )) || fail "bad config accepted"
grep -q "bad_scopes.json: scope 'Broken': the root Canvas is refused: No property at 'nme'" "$tmp/err2" ||
  fail "unclear error: $(cat "$tmp/err2")"
! grep -q LISTENING "$tmp/out2" || fail "listened despite a bad config"

# 3. A missing schema file.
rc=0
"$bin" --listen=127.0.0.1:0 --schema="$tmp/none.json" >/dev/null 2>"$tmp/err3" || rc=$?
(( rc != 0 )) || fail "missing schema accepted"
grep -q "none.json: cannot open the schema file" "$tmp/err3" || fail "unclear error: $(cat "$tmp/err3")"

# 4. A damaged store file: non-zero exit, a message naming the file, and the
# file left byte for byte as it was.
head -c 8192 /dev/urandom >"$tmp/damaged.db"
cp "$tmp/damaged.db" "$tmp/damaged.copy"
rc=0
"$bin" --listen=127.0.0.1:0 --store="sqlite:$tmp/damaged.db" >"$tmp/out4" 2>"$tmp/err4" || rc=$?
(( rc == 1 )) || fail "damaged store: exit code $rc"
grep -q "syncservice: .*damaged.db" "$tmp/err4" || fail "unclear error: $(cat "$tmp/err4")"
cmp -s "$tmp/damaged.db" "$tmp/damaged.copy" || fail "damaged store file modified"
! grep -q LISTENING "$tmp/out4" || fail "listened despite a damaged store"

# 5. A bad --store value.
rc=0
"$bin" --listen=127.0.0.1:0 --store=nowhere >/dev/null 2>"$tmp/err5" || rc=$?
(( rc == 1 )) || fail "bad --store: exit code $rc"
grep -q "store must be memory" "$tmp/err5" || fail "unclear error: $(cat "$tmp/err5")"

# 6. Bearer tokens without TLS: refused at start (they would cross the
# network in clear, and gRPC checks them only on a TLS port).
echo "token-1" >"$tmp/tokens"
rc=0
"$bin" --listen=127.0.0.1:0 --store=memory --auth_tokens_file="$tmp/tokens" >"$tmp/out6" 2>"$tmp/err6" || rc=$?
(( rc == 1 )) || fail "tokens without TLS: exit code $rc"
grep -q "auth_tokens_file needs TLS" "$tmp/err6" || fail "unclear error: $(cat "$tmp/err6")"
! grep -q LISTENING "$tmp/out6" || fail "listened with tokens in clear"

echo PASS
