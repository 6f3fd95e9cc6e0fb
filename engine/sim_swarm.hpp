// Swarm simulator behind bt-sim: a deterministic (seeded) discrete-event simulation of one viewer streaming one file
// from a swarm, driving the real engine::Picker. Peers have their own upload rates, latencies, piece sets and
// lifetimes (churn); the viewer has a bitrate, a start-up buffer, an mp4-style index at the end of the file, and
// scripted seeks and pauses. Scenarios are small `key = value` text files so users can write their own.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/picker.hpp"
#include "net/result.hpp"

namespace ph::sim {

struct PeerGroup {
  std::uint32_t count = 1;
  double rate = 1 << 20;        // bytes/s this peer uploads to us
  double latency = 0.05;        // one-way seconds
  double have = 1.0;            // fraction of pieces it has (1 = seed)
  double unchoke_delay = 0.5;   // seconds after joining before it unchokes us
};

struct ScriptEvent {
  enum class Kind : std::uint8_t { seek, pause };
  Kind kind = Kind::seek;
  double at = 0;     // simulated seconds since the start
  double value = 0;  // seek: fraction of the file (0..1); pause: seconds
};

struct Scenario {
  std::string name = "unnamed";
  std::string description;
  std::uint64_t seed = 1;
  std::uint64_t file_size = 256ull << 20;
  std::uint32_t piece_length = 512 * 1024;
  double bitrate = 1'000'000;               // bytes/s of media
  double duration = 300;                    // simulated seconds at most
  std::uint64_t memory_limit = 512ull << 20;
  bool disk_mode = false;
  std::uint64_t readahead = 32ull << 20;
  bool index_at_end = true;                 // mp4 without faststart: the player reads the tail before playing
  std::uint64_t index_bytes = 1ull << 20;
  double startup_buffer = 2.0;              // seconds of media wanted before starting or resuming
  std::uint32_t request_queue = 32;         // outstanding blocks per peer
  double churn_mean = 0;                    // mean peer lifetime in seconds (0 = no churn)
  double rejoin_delay = 5;                  // a leaving peer is replaced after this long
  std::vector<PeerGroup> groups;
  std::vector<ScriptEvent> script;
};

// Parses a scenario file: `key = value` lines, `#` comments; sizes take B/KiB/MiB/GiB/KB/MB/GB, rates take the same
// per second or kbit/Mbit, times take ms/s/m. `peers = N rate=.. latency=.. have=.. unchoke=..` adds a group;
// `seek = AT FRACTION` and `pause = AT SECONDS` script the viewer. Unknown keys and bad values are errors.
Result<Scenario> parse_scenario(std::string_view text);

struct Sample {
  double t = 0;
  std::uint64_t pos = 0;
};
struct PieceArrival {
  double t = 0;
  std::uint32_t piece = 0;
};
struct Interval {
  double from = 0;
  double to = 0;
};

struct SimResult {
  engine::PickPolicy policy = engine::PickPolicy::window;
  bool started = false;
  double startup_delay = 0;        // seconds until playback started (the whole run when it never did)
  std::uint32_t stalls = 0;        // rebuffering after start-up: playback ran dry (seek waits are counted apart)
  double stall_seconds = 0;
  std::uint32_t seeks = 0;         // seeks performed
  double seek_wait_seconds = 0;    // total time from a seek to playing again
  double mean_seek_wait = 0;
  std::uint64_t downloaded_bytes = 0;   // verified piece bytes, re-fetches included
  std::uint64_t unplayed_bytes = 0;     // fetched but never played
  std::uint64_t duplicate_bytes = 0;    // blocks that arrived twice (end-game, crossed cancels)
  std::uint64_t peak_memory = 0;        // piece bytes held at once (memory mode: arena; disk mode: in flight)
  std::uint64_t played_bytes = 0;
  std::uint32_t budget_violations = 0;  // pieces started beyond the memory limit (must stay 0)
  double end_time = 0;
  std::vector<Sample> playhead;         // trace for the SVG
  std::vector<PieceArrival> arrivals;
  std::vector<Interval> stall_intervals;
};

SimResult run_simulation(const Scenario& scenario, engine::PickPolicy policy, bool keep_trace = false);

const char* policy_name(engine::PickPolicy policy);

}  // namespace ph::sim
