# Helpers to start the project's own Redis and PostgreSQL servers on loopback, under var/.
# Sourced by scripts/demo and scripts/check; no system services are touched.

redis_start() {  # redis_start PORT DIR [PASSWORD]
  # With a PASSWORD, clients must authenticate (REDIS_URL=redis://:PASSWORD@127.0.0.1:PORT/0).
  # It is written to DIR/redis.conf (mode 0600), never on a command line that `ps` shows.
  local port=$1 dir=$2 password=${3:-}
  mkdir -p "$dir"
  if redis_answers "$port" "$password"; then
    if [[ -z $password ]] || redis_refuses_strangers "$port"; then return 0; fi
    # A Redis without a password is on the port: ours from an older run (its pid file is in
    # DIR) is stopped and started again with the password; anyone else's is left alone.
    if [[ -f $dir/redis.pid ]] && [[ $(cat "$dir/redis.pid") == "$(redis_pid "$port")" ]]; then
      redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
      for _ in $(seq 50); do redis_answers "$port" || break; sleep 0.1; done
    else
      echo "A Redis without a password already listens on port $port" >&2; return 1
    fi
  fi
  (
    umask 077
    {
      echo "port $port"
      echo "bind 127.0.0.1"
      echo "daemonize yes"
      echo "dir $dir"
      echo "pidfile $dir/redis.pid"
      echo "logfile $dir/redis.log"
      echo "save \"\""
      echo "appendonly no"
      [[ -z $password ]] || echo "requirepass $password"
    } >"$dir/redis.conf"
  )
  redis-server "$dir/redis.conf" >/dev/null
  for _ in $(seq 50); do redis_answers "$port" "$password" && return 0; sleep 0.1; done
  echo "Redis did not start on port $port (see $dir/redis.log)" >&2; return 1
}

redis_answers() {  # redis_answers PORT [PASSWORD]: true when Redis answers PING (authenticated)
  local out
  if [[ -n ${2:-} ]]; then
    out=$(REDISCLI_AUTH=$2 redis-cli --no-auth-warning -p "$1" ping 2>/dev/null) || return 1
  else
    out=$(redis-cli -p "$1" ping 2>/dev/null) || return 1
  fi
  [[ $out == PONG ]]
}

redis_refuses_strangers() {  # redis_refuses_strangers PORT: true when PING needs a password
  [[ $(redis-cli -p "$1" ping 2>&1) == *NOAUTH* ]]
}

redis_pid() {  # redis_pid PORT: the process id of a Redis without a password on PORT
  redis-cli -p "$1" info server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p'
}

secret_file() {  # secret_file FILE: prints the secret kept in FILE (mode 0600), made once
  local file=$1
  if [[ ! -s $file ]]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
  fi
  chmod 600 "$file"
  cat "$file"
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
