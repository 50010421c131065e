#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, combined broker + controller) on
# 127.0.0.1 for development and tests.
#
#   bash deploy/kafka/broker.sh start [--fresh]   start (no-op if running); --fresh wipes data first
#   bash deploy/kafka/broker.sh stop              SIGTERM, wait, then SIGKILL; data is kept
#   bash deploy/kafka/broker.sh restart           stop + start, data kept
#   bash deploy/kafka/broker.sh status            exit 0 if running, 3 if not
#   bash deploy/kafka/broker.sh logs [-f] [N]     last N (200) lines of the broker log
#   bash deploy/kafka/broker.sh reset             stop and wipe data (topics, offsets)
#   bash deploy/kafka/broker.sh fetch             only download the broker jars
#
# Environment (defaults in brackets):
#   KAFKA_PORT [19092]            PLAINTEXT listener for clients
#   KAFKA_CONTROLLER_PORT [KAFKA_PORT+1]
#   KAFKA_VERSION [4.1.2]         org.apache.kafka:kafka_2.13 version from Maven Central
#   KAFKA_HEAP [512m]             -Xmx of the broker JVM
#   KAFKA_START_TIMEOUT [120]     seconds to wait for the broker to answer
#   KAFKA_STOP_TIMEOUT [30]       seconds to wait after SIGTERM before SIGKILL
#   PALISADE_CACHE [~/.cache/palisade]  jars go to $PALISADE_CACHE/kafka-<version>/libs
#   PALISADE_RUN [<repo>/.run]    config, data, pid and log go to $PALISADE_RUN/kafka
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.1.2}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_HEAP=${KAFKA_HEAP:-512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
HOST=127.0.0.1

cache_dir=${PALISADE_CACHE:-$HOME/.cache/palisade}/kafka-$KAFKA_VERSION
libs=$cache_dir/libs
run_dir=${PALISADE_RUN:-$repo/.run}/kafka
data_dir=$run_dir/data
props=$run_dir/server.properties
log4j_conf=$run_dir/log4j2.properties
pid_file=$run_dir/broker.pid
log_file=$run_dir/broker.log
# The controller endpoint is written into the metadata log when storage is formatted;
# starting the same data on another controller port would never elect a leader.
formatted_for=$run_dir/formatted-for

say() { echo "kafka: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Serialise start/stop/reset: several test runs may call this at once. The lock fd
# must not leak into the broker (it would hold the lock for the broker's lifetime).
with_lock() {
  mkdir -p "$run_dir"
  exec 8>"$run_dir/.lock"
  flock -w $((KAFKA_START_TIMEOUT + KAFKA_STOP_TIMEOUT + 600)) 8 || die "timed out waiting for $run_dir/.lock"
}

# ---------------------------------------------------------------- jars

pom_hash() { sha256sum "$here/pom.xml" | cut -d' ' -f1; }

fetch_libs() {
  local stamp=$cache_dir/.complete want
  want=$(pom_hash)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$libs" ]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch the Kafka jars)"
  command -v java >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
  mkdir -p "$cache_dir"
  exec 7>"$cache_dir/.fetch.lock"
  flock -w 900 7 || die "timed out waiting for $cache_dir/.fetch.lock"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$libs" ]; then
    exec 7>&-
    return 0
  fi
  say "fetching kafka_2.13 $KAFKA_VERSION and its runtime jars with Maven into $libs"
  local tmp=$cache_dir/libs.tmp.$$ mvn_log=$cache_dir/mvn.log
  rm -rf "$tmp"
  # Copy into a temp dir and rename, so an interrupted download never looks complete.
  if ! mvn -q -B -f "$here/pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" \
      dependency:copy-dependencies >"$mvn_log" 2>&1; then
    tail -n 40 "$mvn_log" >&2
    rm -rf "$tmp"
    die "Maven could not fetch the Kafka jars (full output: $mvn_log)"
  fi
  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || die "kafka_2.13-$KAFKA_VERSION.jar missing after Maven ran"
  rm -rf "$libs"
  mv "$tmp" "$libs"
  echo "$want" >"$stamp"
  exec 7>&-
}

# ---------------------------------------------------------------- process

# Prints the pid if our broker (this run dir) is alive; the pid file alone could name
# a recycled pid that now belongs to something else.
running_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$cmd" in
    *kafka.Kafka*"$props"*) echo "$pid" ;;
    *) return 1 ;;
  esac
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# ---------------------------------------------------------------- config

write_config() {
  mkdir -p "$data_dir"
  cat >"$props" <<EOF
# Written by deploy/kafka/broker.sh on each start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data_dir

# The application creates its topics; a typo must fail, not create a topic.
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
# 50 by default: creating them on the first consumer group slows every fresh start.
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumers in tests join one at a time; do not wait 3 s for more members.
group.initial.rebalance.delay.ms=0

# Two cores on dev and CI machines.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
EOF
  cat >"$log4j_conf" <<'EOF'
# Broker log to stdout, which broker.sh sends to broker.log.
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
}

java_opts() {
  printf '%s\n' \
    -Xms128m "-Xmx$KAFKA_HEAP" \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$log4j_conf"
}

format_storage() {
  local want="controller=$HOST:$KAFKA_CONTROLLER_PORT"
  if [ -f "$data_dir/meta.properties" ]; then
    if [ -f "$formatted_for" ] && [ "$(cat "$formatted_for")" != "$want" ]; then
      die "data in $data_dir was formatted for $(cat "$formatted_for"), now $want; run '$0 start --fresh' to wipe it"
    fi
    return 0
  fi
  # A cluster id is 16 random bytes, URL-safe base64 without padding (what
  # `kafka-storage random-uuid` prints); made here to save a JVM start. Like Kafka's
  # own generator, avoid a leading '-': the tool's parser would take it for an option.
  local cluster_id=-
  while [[ "$cluster_id" == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  say "formatting $data_dir (cluster id $cluster_id)"
  local out
  mapfile -t opts < <(java_opts)
  if ! out=$(java "${opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format \
      --config "$props" --cluster-id "$cluster_id" --standalone 2>&1); then
    echo "$out" >&2
    die "formatting the storage failed"
  fi
  echo "$want" >"$formatted_for"
}

# ---------------------------------------------------------------- commands

# kcat is the outside client the tests use too; without it we rely on the log line.
metadata_ok() {
  if command -v kcat >/dev/null 2>&1; then
    kcat -b "$HOST:$KAFKA_PORT" -L -m 3 2>/dev/null | grep -q '^ *1 brokers:'
  else
    return 0
  fi
}

start() {
  local fresh=0
  for a in "$@"; do
    case "$a" in
      --fresh) fresh=1 ;;
      *) die "unknown option for start: $a" ;;
    esac
  done
  with_lock
  if [ "$fresh" -eq 1 ]; then
    stop_locked
    wipe
  fi
  local pid
  if pid=$(running_pid); then
    say "already running (pid $pid) on $HOST:$KAFKA_PORT"
    return 0
  fi
  fetch_libs
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port $p on $HOST is taken by another process (not the broker of $run_dir); set KAFKA_PORT"
    fi
  done
  write_config
  format_storage

  [ -f "$log_file" ] && mv -f "$log_file" "$log_file.1"
  local t0=$SECONDS
  mapfile -t opts < <(java_opts)
  # setsid: own session, so a Ctrl-C or a job-control kill aimed at the caller's
  # process group (a test runner) does not take the broker down with it.
  setsid java "${opts[@]}" -cp "$libs/*" kafka.Kafka "$props" \
    </dev/null >"$log_file" 2>&1 8>&- 7>&- &
  pid=$!
  echo "$pid" >"$pid_file"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pid_file"
      say "broker exited during startup; last lines of $log_file:"
      tail -n 40 "$log_file" >&2 || true
      exit 1
    fi
    if grep -q 'Kafka Server started' "$log_file" 2>/dev/null && port_open "$KAFKA_PORT" && metadata_ok; then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "broker did not answer on $HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s; last lines of $log_file:"
      tail -n 40 "$log_file" >&2 || true
      stop_locked
      exit 1
    fi
    sleep 0.2
  done
  say "running (pid $pid) on $HOST:$KAFKA_PORT, ready after $((SECONDS - t0))s; data in $data_dir"
}

stop_locked() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file"
    return 0
  fi
  say "stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  say "stopped"
}

stop() {
  with_lock
  if ! running_pid >/dev/null; then
    rm -f "$pid_file"
    say "not running"
    return 0
  fi
  stop_locked
}

wipe() {
  rm -rf "$data_dir" "$formatted_for"
}

status() {
  local pid
  if pid=$(running_pid); then
    echo "kafka: running (pid $pid) on $HOST:$KAFKA_PORT; run dir $run_dir"
    return 0
  fi
  echo "kafka: stopped"
  return 3
}

logs() {
  local follow=() n=200
  for a in "$@"; do
    case "$a" in
      -f) follow=(-F) ;;
      *[!0-9]*) die "usage: $0 logs [-f] [LINES]" ;;
      *) n=$a ;;
    esac
  done
  [ -f "$log_file" ] || die "no log yet at $log_file"
  exec tail -n "$n" "${follow[@]}" "$log_file"
}

cmd=${1:-}
[ "$#" -gt 0 ] && shift
case "$cmd" in
  start) start "$@" ;;
  stop) stop ;;
  restart) stop; start "$@" ;;
  status) status ;;
  logs) logs "$@" ;;
  reset) with_lock; stop_locked; wipe; say "data wiped ($data_dir)" ;;
  fetch) fetch_libs; say "jars in $libs" ;;
  *)
    # the header comment is the usage text
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
    exit 2
    ;;
esac
