#!/usr/bin/env bash
# `make demo`: try Playhead with no internet. Makes a sample video (ffmpeg when present, else a generated file),
# a torrent of it with bt-create, starts a seed-only Playhead and a Playhead server with the torrent added and the
# seeder connected, and prints the URL to open. Ctrl-C stops both.
#
# usage: tools/demo.sh [BUILD_DIR] [--check]
#   --check   stream the file once, compare it with the source, stop both and exit (0 when identical)
# environment: HTTP_PORT (8080), DEMO_PEER_PORT (6881), DEMO_SEED_PORT (6882), DEMO_SEED_HTTP_PORT (8081),
#              DEMO_DIR (a fresh temp folder)
set -euo pipefail

build_dir=build
check=0
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    *) build_dir=$a ;;
  esac
done
bin=$(cd "$build_dir/bin" && pwd)
for exe in playhead bt-create; do
  [[ -x "$bin/$exe" ]] || { echo "demo: $bin/$exe is missing: run make build first" >&2; exit 2; }
done

http_port=${HTTP_PORT:-8080}
peer_port=${DEMO_PEER_PORT:-6881}
seed_port=${DEMO_SEED_PORT:-6882}
# The seeder's own HTTP API, on loopback (HTTP_PORT=0 is refused by the config check, so it gets a port too).
seed_http_port=${DEMO_SEED_HTTP_PORT:-8081}
dir=${DEMO_DIR:-$(mktemp -d /tmp/playhead-demo.XXXXXX)}
mkdir -p "$dir/data" "$dir/seed" "$dir/server"

# 1. Sample media: a minute of test pattern and tone, H.264/AAC, faststart, so any browser plays it.
if command -v ffmpeg >/dev/null; then
  sample="$dir/data/playhead-demo.mp4"
  if [[ ! -s "$sample" ]]; then
    echo "demo: making a 60 s sample video with ffmpeg..."
    ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30:duration=60 \
      -f lavfi -i sine=frequency=330:beep_factor=4:duration=60 -c:v libx264 -preset veryfast -b:v 3000k -g 60 \
      -pix_fmt yuv420p -c:a aac -b:a 128k -shortest -movflags +faststart "$sample"
  fi
else
  sample="$dir/data/playhead-demo.bin"
  echo "demo: ffmpeg not found, using 64 MiB of generated data (stream it with curl, not a browser)"
  [[ -s "$sample" ]] || head -c $((64 * 1024 * 1024)) /dev/urandom >"$sample"
fi

# 2. The torrent.
torrent="$dir/playhead-demo.torrent"
"$bin/bt-create" --force -o "$torrent" "$sample" >/dev/null

# 3. Both processes, on loopback only, DHT off (nothing leaves the machine).
pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap 'echo; echo "demo: stopping"; stop; exit 0' INT TERM
trap stop EXIT

(cd "$dir/seed" && exec env TORRENT_PEER_PORT="$seed_port" HTTP_PORT="$seed_http_port" TORRENT_DHT=false \
  "$bin/playhead" seed "$torrent" --data "$dir/data" >"$dir/seed.log" 2>&1) &
pids+=($!)
(cd "$dir/server" && exec env TORRENT_PEER_PORT="$peer_port" HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" \
  TORRENT_DHT=false "$bin/playhead" "$torrent" >"$dir/server.log" 2>&1) &
pids+=($!)

base="http://127.0.0.1:$http_port"
for _ in $(seq 100); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "demo: a playhead exited; logs in $dir:" >&2; tail -5 "$dir"/*.log >&2; exit 1; }
  done
  sleep 0.1
done
curl -fs "$base/healthz" >/dev/null || { echo "demo: the server did not start (see $dir/server.log)" >&2; exit 1; }
hash=$(curl -fs "$base/api/torrents" | grep -o '"infoHash": *"[0-9a-f]\{40\}"' | head -1 | grep -o '[0-9a-f]\{40\}')
[[ -n "$hash" ]] || { echo "demo: the torrent is not listed" >&2; exit 1; }
# The seeder verifies its data first and turns peers away until then.
for _ in $(seq 600); do
  curl -fs "http://127.0.0.1:$seed_http_port/api/torrents" | grep -q '"progress": *1[,.}]' && break
  sleep 0.1
done
connected=0
for _ in $(seq 30); do
  curl -fs -X POST -H 'Content-Type: application/json' -d "{\"address\": \"127.0.0.1:$seed_port\"}" \
    "$base/api/torrents/$hash/peers" >/dev/null || true
  sleep 1
  if curl -fs "$base/api/torrents/$hash" | grep -q '"peers": *[1-9]'; then connected=1; break; fi
done
[[ $connected -eq 1 ]] || echo "demo: the seeder is not connected yet (see $dir/seed.log)" >&2

stream="$base/stream/$hash/0/$(basename "$sample")"
if [[ $check -eq 1 ]]; then
  curl -fs --max-time 120 -o "$dir/streamed" "$stream"
  cmp "$dir/streamed" "$sample" && echo "demo: streamed $(stat -c %s "$sample") bytes, identical to the source"
  exit 0
fi

cat <<EOF

  Playhead demo is running (files and logs in $dir).

  Open the web page:   $base/#$hash
  Or play the stream:  mpv '$stream'
                       ffplay '$stream'   /   vlc '$stream'

  A seed-only Playhead on 127.0.0.1:$seed_port feeds the server on 127.0.0.1:$peer_port.
  Press Ctrl-C to stop both.
EOF
wait
