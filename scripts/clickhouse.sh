#!/usr/bin/env bash
# A private ClickHouse server for the tests and for trying storage: clickhouse (optional store).
#
#   scripts/clickhouse.sh install      install clickhouse-server and clickhouse-client (apt, idempotent)
#   scripts/clickhouse.sh start DIR    start a server whose config, data and logs live in DIR
#   scripts/clickhouse.sh status DIR   exit 0 when that server is up
#   scripts/clickhouse.sh stop DIR     stop it
#
# It listens on 127.0.0.1 only, on CLICKHOUSE_PORT (native, default 19000) and CLICKHOUSE_HTTP_PORT
# (/ping only, default 18123): not the usual 9000/8123, which a system server or other tools may hold.
# start is idempotent: a server already running from DIR is reused.
set -euo pipefail

PORT=${CLICKHOUSE_PORT:-19000}
HTTP_PORT=${CLICKHOUSE_HTTP_PORT:-18123}
SERVER=${CLICKHOUSE_SERVER:-/usr/sbin/clickhouse-server}

die() { echo "clickhouse.sh: $*" >&2; exit 1; }

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install() {
	local missing=""
	for p in clickhouse-server clickhouse-client; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "apt: installing$missing"
	sudo_ apt-get update -qq
	# The package's service is not wanted (and cannot start in a container): we run our own.
	DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq $missing >/dev/null
}

# ping asks the HTTP port's /ping without curl (bash's /dev/tcp), so that only apt packages we
# install are needed.
ping_() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || exit 1
		printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		reply=$(timeout 2 cat <&3 || true)
		[[ "$reply" == *"Ok."* ]]
	) 2>/dev/null
}

running() { # DIR: our server's pid is alive
	local pid
	[ -f "$1/server.pid" ] || return 1
	pid=$(cat "$1/server.pid")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

write_config() { # DIR (absolute)
	local dir=$1
	mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
	# Nothing in DIR belongs in git, wherever DIR is.
	echo '*' >"$dir/.gitignore"
	cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$PORT</tcp_port>
    <http_port>$HTTP_PORT</http_port>
    <max_connections>256</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
EOF
	cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

start() {
	[ $# = 1 ] || die "usage: start DIR"
	mkdir -p "$1"
	local dir
	dir=$(cd "$1" && pwd)
	if running "$dir" && ping_; then
		echo "clickhouse: already running on 127.0.0.1:$PORT (pid $(cat "$dir/server.pid"))"
		return 0
	fi
	[ -x "$SERVER" ] || die "$SERVER not found: run '$0 install' first"
	if ping_; then
		die "127.0.0.1:$HTTP_PORT already answers /ping but is not the server in $dir: set CLICKHOUSE_PORT and CLICKHOUSE_HTTP_PORT"
	fi
	write_config "$dir"
	# setsid: the server outlives this shell and make's process group, until stop.
	setsid "$SERVER" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$dir/server.pid"
	for _ in $(seq 1 150); do
		if ping_; then
			echo "clickhouse: running on 127.0.0.1:$PORT (pid $(cat "$dir/server.pid"), data in $dir)"
			return 0
		fi
		running "$dir" || break
		sleep 0.2
	done
	echo "clickhouse: the server did not answer /ping within 30 s; its logs:" >&2
	tail -n 30 "$dir/log/stdout.log" "$dir/log/server.err.log" >&2 2>/dev/null || true
	stop "$dir" || true
	exit 1
}

status() {
	[ $# = 1 ] || die "usage: status DIR"
	[ -d "$1" ] && running "$1" && ping_
}

stop() {
	[ $# = 1 ] || die "usage: stop DIR"
	local dir=$1 pid
	running "$dir" || { rm -f "$dir/server.pid"; return 0; }
	pid=$(cat "$dir/server.pid")
	kill "$pid"
	# A clean shutdown flushes parts; give it 30 s before forcing.
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$dir/server.pid"; echo "clickhouse: stopped"; return 0; }
		sleep 0.2
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/server.pid"
	echo "clickhouse: killed after 30 s"
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: $0 install | start DIR | status DIR | stop DIR"
shift
case "$cmd" in
install) install "$@" ;;
start) start "$@" ;;
status) status "$@" ;;
stop) stop "$@" ;;
*) die "unknown command $cmd: want install, start, status or stop" ;;
esac
