# Starts the Debian pgbouncer as the postgres user, on 127.0.0.1:$1, in transaction pooling mode with
# 2 server connections in front of the cluster in PGHOST/PGPORT, database $2. Source lib.sh first.
pgbouncer_start() {
    local port=$1 db=$2 dir=$WARDEN_RUN/pgbouncer
    pgbouncer_stop
    rm -rf "$dir" && mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
$db = host=127.0.0.1 port=$PGPORT dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 20
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo '"it_app" ""' >"$dir/userlist.txt"
    chown -R postgres:postgres "$dir"
    as_pg /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0; sleep 0.1; done
    say "pgbouncer did not start"; cat "$dir/pgbouncer.log"; return 1
}

pgbouncer_stop() {
    local pid=$WARDEN_RUN/pgbouncer/pgbouncer.pid
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
}
