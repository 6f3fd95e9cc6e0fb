#!/usr/bin/env bash
# HTTP serving throughput of a file Playhead already holds in memory, under many concurrent Range requests (wrk),
# next to nginx serving the same bytes from tmpfs in the same run. Prints both and the ratio.
#
# usage: bench/http_bench.sh [BUILD_DIR]     (a Release build is what the figures are about)
# environment: BENCH_SIZE_MIB (64), BENCH_RANGE_KIB (256), BENCH_CONNECTIONS (64), BENCH_SECONDS (10),
#              BENCH_THREADS (2), NGINX_WORKERS (1: Playhead serves from one io_context thread)
# wrk and nginx are installed with apt-get when missing. Everything listens on 127.0.0.1 and stops at exit.
set -euo pipefail

build_dir=${1:-build}
bin=$(cd "$build_dir/bin" && pwd)
size_mib=${BENCH_SIZE_MIB:-64}
range_kib=${BENCH_RANGE_KIB:-256}
conns=${BENCH_CONNECTIONS:-64}
seconds=${BENCH_SECONDS:-10}
threads=${BENCH_THREADS:-2}
nginx_workers=${NGINX_WORKERS:-1}

need=()
command -v wrk >/dev/null || need+=(wrk)
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null || need+=(nginx-light)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "http_bench: installing ${need[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

dir=$(mktemp -d /dev/shm/playhead-bench.XXXXXX)  # tmpfs: nginx reads from memory too
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir -p "$dir/www" "$dir/seed" "$dir/server" "$dir/nginx"
file="$dir/www/bench.bin"
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$file"
"$bin/bt-create" --force -o "$dir/bench.torrent" "$file" >/dev/null

# Playhead: a seed-only instance feeds a memory-mode server; one full read puts every piece in the arena.
seed_port=$(free_port)
peer_port=$(free_port)
http_port=$(free_port)
seed_http_port=$(free_port)  # HTTP_PORT=0 is refused by the config check, so the seeder gets a port too
(cd "$dir/seed" && exec env TORRENT_PEER_PORT="$seed_port" HTTP_PORT="$seed_http_port" TORRENT_DHT=false \
  "$bin/playhead" seed "$dir/bench.torrent" --data "$dir/www" >"$dir/seed.log" 2>&1) &
pids+=($!)
(cd "$dir/server" && exec env TORRENT_PEER_PORT="$peer_port" HTTP_PORT="$http_port" TORRENT_DHT=false \
  TORRENT_MEMORY_LIMIT=$((size_mib * 2 + 64))MiB "$bin/playhead" "$dir/bench.torrent" >"$dir/server.log" 2>&1) &
pids+=($!)
base="http://127.0.0.1:$http_port"
for _ in $(seq 100); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
hash=$(curl -fs "$base/api/torrents" | grep -o '"infoHash": *"[0-9a-f]\{40\}"' | grep -o '[0-9a-f]\{40\}')
for _ in $(seq 600); do  # the seeder turns peers away until it has verified its data
  curl -fs "http://127.0.0.1:$seed_http_port/api/torrents" | grep -q '"progress": *1[,.}]' && break
  sleep 0.1
done
for _ in $(seq 30); do
  curl -fs -X POST -H 'Content-Type: application/json' -d "{\"address\": \"127.0.0.1:$seed_port\"}" \
    "$base/api/torrents/$hash/peers" >/dev/null || true
  sleep 1
  curl -fs "$base/api/torrents/$hash" | grep -q '"peers": *[1-9]' && break
done
curl -fs --max-time 300 -o "$dir/check.bin" "$base/stream/$hash/0"
cmp -s "$dir/check.bin" "$file" || { echo "http_bench: the streamed file differs from the source" >&2; exit 1; }
rm -f "$dir/check.bin"
memory=$(curl -fs "$base/api/torrents/$hash" | grep -o '"memoryBytes": *[0-9]*' | grep -o '[0-9]*$')
echo "playhead holds $((memory / 1024 / 1024)) MiB of the $size_mib MiB file in memory"

# nginx: the same bytes from tmpfs, sendfile on, access log off.
nginx_port=$(free_port)
cat >"$dir/nginx/nginx.conf" <<EOF
worker_processes $nginx_workers;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $dir/nginx;
  proxy_temp_path $dir/nginx;
  fastcgi_temp_path $dir/nginx;
  uwsgi_temp_path $dir/nginx;
  scgi_temp_path $dir/nginx;
  server {
    listen 127.0.0.1:$nginx_port;
    root $dir/www;
  }
}
EOF
"$nginx_bin" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" 2>>"$dir/nginx/error.log" &
pids+=($!)
for _ in $(seq 50); do curl -fs -o /dev/null -r 0-0 "http://127.0.0.1:$nginx_port/bench.bin" && break; sleep 0.1; done

# wrk: every request a random, range-aligned Range of BENCH_RANGE_KIB.
cat >"$dir/range.lua" <<EOF
local size = $((size_mib * 1024 * 1024))
local len = $((range_kib * 1024))
request = function()
  local first = math.random(0, size / len - 1) * len
  return wrk.format("GET", wrk.path, { ["Range"] = "bytes=" .. first .. "-" .. (first + len - 1) })
end
EOF

run() {  # name url -> prints a line, sets $rps and $mibs
  local out
  out=$(wrk -t"$threads" -c"$conns" -d"${seconds}s" -s "$dir/range.lua" "$2")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local transfer
  transfer=$(echo "$out" | awk '/Transfer\/sec/ {print $2}')
  mibs=$(echo "$transfer" | awk '/GB$/ {printf "%.1f", $1 * 1024; next} /MB$/ {printf "%.1f", $1; next} /KB$/ {printf "%.3f", $1 / 1024; next} {print 0}')
  local errors
  errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" || true)
  printf "%-9s %10s req/s %10s MiB/s  %s\n" "$1" "$rps" "$mibs" "$errors"
}

echo "wrk: $conns connections, $threads threads, ${seconds}s, random ${range_kib} KiB ranges of a $size_mib MiB file"
run playhead "$base/stream/$hash/0/bench.bin"
ph_rps=$rps ph_mibs=$mibs
run nginx "http://127.0.0.1:$nginx_port/bench.bin"
ng_rps=$rps ng_mibs=$mibs
awk -v a="$ph_mibs" -v b="$ng_mibs" 'BEGIN { if (b > 0) printf "ratio playhead/nginx: %.2f\n", a / b }'
