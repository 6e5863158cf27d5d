# Sourced by scripts/e2e-proxy.sh and scripts/bench-class.sh: the shipped deploy/nginx.conf, run
# by a private Debian nginx out of the caller's temporary directory, never as the system's
# service. The caller has set `dir` (that directory, holding cert.pem and key.pem), `nginx`
# (the binary) and `pids` (what its EXIT trap stops), and defines `fail`.

# nginx_site HTTPS_PORT HTTP_PORT INSTANCE_A [INSTANCE_B]: $dir/patternscope.conf, the shipped
# file with only its @PLACEHOLDERS@ filled in; without INSTANCE_B its line is deleted.
nginx_site() {
  local https_port=$1 http_port=$2 a=$3 b=${4:-} left
  local second=(-e "s|@INSTANCE_B@|$b|g")
  [ -n "$b" ] || second=(-e "/@INSTANCE_B@/d")
  sed -e "s|@SERVER_NAME@|127.0.0.1|g" -e "s|@HTTPS_PORT@|127.0.0.1:$https_port|g" \
    -e "s|@HTTP_PORT@|127.0.0.1:$http_port|g" -e "s|@CERT@|$dir/cert.pem|g" \
    -e "s|@KEY@|$dir/key.pem|g" -e "s|@INSTANCE_A@|$a|g" "${second[@]}" \
    deploy/nginx.conf > "$dir/patternscope.conf"
  # The file's header names the placeholders in a comment: only the directives count.
  left=$(grep -v '^[[:space:]]*#' "$dir/patternscope.conf" | grep -o '@[A-Z_]*@' | sort -u | tr '\n' ' ' || true)
  [ -z "$left" ] || fail "placeholders in deploy/nginx.conf left unfilled: $left"
}

# nginx_start MAIN HTTP: nginx on $dir/patternscope.conf inside a minimal main configuration,
# with MAIN's directives (say, a worker's open-file limit) and HTTP's (the access log) added;
# one worker with CONNECTIONS (default 1024) connections.
nginx_start() {
  local main=$1 http=$2 connections=${CONNECTIONS:-1024} user=""
  # As root, nginx would hand its workers to `nobody`, who cannot use this private directory.
  [ "$(id -u)" = 0 ] && user="user root;"
  mkdir -p "$dir/temp"
  cat > "$dir/nginx.conf" <<CONF
$user
worker_processes 1;
$main
pid $dir/nginx.pid;
error_log $dir/nginx-error.log notice;
events { worker_connections $connections; }
http {
  $http
  client_body_temp_path $dir/temp/body;
  proxy_temp_path $dir/temp/proxy;
  fastcgi_temp_path $dir/temp/fastcgi;
  uwsgi_temp_path $dir/temp/uwsgi;
  scgi_temp_path $dir/temp/scgi;
  include $dir/patternscope.conf;
}
CONF
  "$nginx" -t -q -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" || fail "nginx rejected the configuration"
  "$nginx" -p "$dir" -e "$dir/nginx-error.log" -c "$dir/nginx.conf" -g 'daemon off;' &
  pids+=($!)
}
