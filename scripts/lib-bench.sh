# lib-bench.sh: what the benchmark scripts share (sourced, POSIX sh).

# start_nginx DIR: Debian's nginx on a free 127.0.0.1 port answering "ok" to every
# request with keep-alive that never ends, its one worker pinned to core 1 (the clients
# go on core 0). Config and logs live in DIR; requests to /first alone are logged, one
# line each, to DIR/first.log with their arrival time ($msec: Unix seconds, 1 ms
# resolution). Sets PORT, URL and NGINX_PID; returns non-zero when nginx did not come
# up within 5 s.
start_nginx() {
    _dir=$1
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
    URL="http://127.0.0.1:$PORT/"
    cat >"$_dir/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $_dir/nginx.pid;
error_log $_dir/nginx-error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    log_format arrival '\$msec';
    client_body_temp_path $_dir/body;
    proxy_temp_path $_dir/proxy;
    fastcgi_temp_path $_dir/fastcgi;
    uwsgi_temp_path $_dir/uwsgi;
    scgi_temp_path $_dir/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$PORT backlog=8192;
        location / { default_type text/plain; return 200 "ok\n"; }
        location = /first {
            access_log $_dir/first.log arrival;
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
CONF
    taskset -c 1 "$(command -v nginx || echo /usr/sbin/nginx)" -c "$_dir/nginx.conf" \
        -e "$_dir/nginx-error.log" >"$_dir/nginx.out" 2>&1 &
    NGINX_PID=$!
    _i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" \
        2>/dev/null; do
        _i=$((_i + 1))
        if [ $_i -ge 50 ]; then
            echo "nginx did not start: $(cat "$_dir/nginx.out" "$_dir/nginx-error.log" 2>/dev/null)" >&2
            return 1
        fi
        sleep 0.1
    done
}

# write_profile FILE P99_ONLY [EXTRA_YAML]: the benchmark profile, one service at $URL,
# no think time, one engine thread, thresholds that never fail (the numbers are the
# point). With P99_ONLY=1 only p(99) is judged; EXTRA_YAML is appended as it is.
write_profile() {
    _th='"med<60000", "p(99)<60000"'
    [ "$2" = 1 ] && _th='"p(99)<60000"'
    cat >"$1" <<EOF
environment: bench
services:
  - name: nginx
    url: $URL
    expect_status: 200
load:
  think_time: 0s
  request_timeout: 10s
  threads: 1
  thresholds:
    http_req_duration: [$_th]
${3:-}
EOF
}
