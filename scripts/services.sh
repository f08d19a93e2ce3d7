# Helpers to start the project's own Redis and PostgreSQL servers on loopback, under var/.
# Sourced by scripts/demo and scripts/check; no system services are touched.

redis_start() {  # redis_start PORT DIR
  local port=$1 dir=$2
  mkdir -p "$dir"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "Redis did not start on port $port (see $dir/redis.log)" >&2; return 1
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1; }

postgres_start() {  # postgres_start PORT DIR  -> a throw-away cluster owned by user postgres
  local port=$1 dir=$2 bin
  bin=$(pg_bin)
  mkdir -p "$dir"
  chown postgres "$dir"
  chmod 700 "$dir"
  if [[ ! -f $dir/PG_VERSION ]]; then
    runuser -u postgres -- "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync >/dev/null
  fi
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  fi
}

postgres_stop() {  # postgres_stop DIR
  local dir=$1
  runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
}
