// Picker benchmarks: block picks per second for 1k/10k/100k pieces x 10/50/200 peers x 1/4 playheads, the cost of
// availability updates (have, bitfield, peer gone) and of a seek. The figures are per block / per event, so flat
// numbers across piece counts show that the cost does not grow with the torrent.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "engine/picker.hpp"

using namespace ph::engine;

namespace {

constexpr std::uint32_t kPieceLength = 256 * 1024;  // 16 blocks per piece; 100k pieces = a 25 GiB torrent
constexpr double kBitrate = 1'000'000;               // 8 Mbit/s video: a 4 s urgent zone is 16 pieces

// splitmix64: small, fast and deterministic.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
};

struct Swarm {
  Picker picker;
  std::vector<std::uint64_t> heads;  // playhead byte offsets
  std::uint32_t peers = 0;
};

Swarm make_swarm(std::uint32_t pieces, std::uint32_t peers, std::uint32_t playheads) {
  PickerConfig c;
  c.piece_count = pieces;
  c.piece_length = kPieceLength;
  c.total_length = static_cast<std::uint64_t>(pieces) * kPieceLength;
  auto r = Picker::create(c);
  if (!r.ok()) std::abort();
  Swarm s{std::move(r).value(), {}, peers};
  Rng rng{42};
  std::vector<std::uint8_t> bitfield((pieces + 7) / 8);
  for (PeerSlot p = 0; p < peers; ++p) {
    if (!s.picker.add_peer(p).ok()) std::abort();
    if (p % 10 == 0) {
      s.picker.peer_have_all(p);  // a tenth are seeds
    } else {
      for (auto& byte : bitfield) byte = static_cast<std::uint8_t>(rng.next());  // about half the pieces
      s.picker.peer_bitfield(p, bitfield);
    }
    s.picker.peer_unchoked(p);
    s.picker.peer_rate(p, 50'000.0 + rng.below(5'000'000));
  }
  for (std::uint32_t i = 0; i < playheads; ++i) {
    const std::uint64_t off = (c.total_length / playheads) * i;
    s.heads.push_back(off);
    if (!s.picker.set_playhead(i, {off, kBitrate, false}).ok()) std::abort();
  }
  return s;
}

PickerTime at_ns(std::int64_t ns) { return PickerTime{} + std::chrono::nanoseconds(ns); }

// Streaming steady state: each pick's blocks arrive at once, complete pieces are verified, a playhead advances past
// what it has and the pieces behind it are evicted (memory mode). Counts block picks; includes the event costs.
void BM_PickStreaming(benchmark::State& state) {
  const auto pieces = static_cast<std::uint32_t>(state.range(0));
  const auto peers = static_cast<std::uint32_t>(state.range(1));
  const auto heads = static_cast<std::uint32_t>(state.range(2));
  Swarm s = make_swarm(pieces, peers, heads);
  std::vector<BlockRequest> out;
  out.reserve(64);
  std::uint64_t picked = 0;
  std::int64_t now = 1'000'000'000;
  PeerSlot peer = 0;
  const std::uint64_t total = static_cast<std::uint64_t>(pieces) * kPieceLength;
  for (auto _ : state) {
    out.clear();
    s.picker.pick(peer, 16, at_ns(now), out);
    picked += out.size();
    for (const auto& b : out) {
      if (s.picker.block_received(peer, b) == BlockOutcome::piece_complete) s.picker.piece_verified(b.piece);
    }
    for (std::uint32_t h = 0; h < heads; ++h) {
      // Advance past what we have; wrap at the end of the torrent.
      auto p = static_cast<ph::PieceIndex>(s.heads[h] / kPieceLength);
      bool moved = false;
      while (s.picker.have_piece(p)) {
        s.picker.piece_evicted(p);
        s.heads[h] = (s.heads[h] + kPieceLength) % total;
        p = static_cast<ph::PieceIndex>(s.heads[h] / kPieceLength);
        moved = true;
      }
      if (moved) (void)s.picker.set_playhead(h, {s.heads[h], kBitrate, false});
    }
    (void)s.picker.take_cancellations();
    peer = (peer + 1) % peers;
    now += 1000;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(picked));
  state.counters["blocks_per_pick"] = static_cast<double>(picked) / static_cast<double>(state.iterations());
}

// The pick alone, on a window with everything still to request: pick, then reject what was picked.
void BM_PickOnly(benchmark::State& state) {
  const auto pieces = static_cast<std::uint32_t>(state.range(0));
  const auto peers = static_cast<std::uint32_t>(state.range(1));
  const auto heads = static_cast<std::uint32_t>(state.range(2));
  Swarm s = make_swarm(pieces, peers, heads);
  std::vector<BlockRequest> out;
  out.reserve(64);
  std::uint64_t picked = 0;
  PeerSlot peer = 0;
  for (auto _ : state) {
    out.clear();
    s.picker.pick(peer, 16, at_ns(1'000'000'000), out);
    picked += out.size();
    state.PauseTiming();
    for (const auto& b : out) s.picker.block_rejected(peer, b);
    state.ResumeTiming();
    peer = (peer + 1) % peers;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(picked));
}

// Availability: a peer announces 1,000 pieces one `have` at a time, then leaves. Items: per-piece updates.
void BM_AvailabilityHaveAndLeave(benchmark::State& state) {
  const auto pieces = static_cast<std::uint32_t>(state.range(0));
  Swarm s = make_swarm(pieces, 50, 1);
  Rng rng{7};
  std::vector<ph::PieceIndex> order(1000);
  for (auto& p : order) p = rng.below(pieces);
  const PeerSlot newcomer = 60;
  for (auto _ : state) {
    (void)s.picker.add_peer(newcomer);
    for (auto p : order) s.picker.peer_have(newcomer, p);
    s.picker.remove_peer(newcomer);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 2000);
}

// Availability: a full bitfield arrives and the peer leaves. Items: pieces in the bitfield (cost per piece).
void BM_AvailabilityBitfield(benchmark::State& state) {
  const auto pieces = static_cast<std::uint32_t>(state.range(0));
  Swarm s = make_swarm(pieces, 50, 1);
  Rng rng{9};
  std::vector<std::uint8_t> bitfield((pieces + 7) / 8);
  for (auto& byte : bitfield) byte = static_cast<std::uint8_t>(rng.next());
  const PeerSlot newcomer = 60;
  for (auto _ : state) {
    (void)s.picker.add_peer(newcomer);
    s.picker.peer_bitfield(newcomer, bitfield);
    s.picker.remove_peer(newcomer);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * pieces);
}

// Seek: every peer has a full request queue in the current window; the playhead jumps elsewhere, the old requests
// are cancelled and the new window is requested again by every peer. Items: seeks.
void BM_Seek(benchmark::State& state) {
  const auto pieces = static_cast<std::uint32_t>(state.range(0));
  const auto peers = static_cast<std::uint32_t>(state.range(1));
  Swarm s = make_swarm(pieces, peers, 1);
  Rng rng{11};
  std::vector<BlockRequest> out;
  std::uint64_t cancelled = 0;
  for (auto _ : state) {
    const std::uint64_t off = static_cast<std::uint64_t>(rng.below(pieces)) * kPieceLength;
    (void)s.picker.set_playhead(0, {off, kBitrate, false});
    cancelled += s.picker.take_cancellations().size();
    for (PeerSlot p = 0; p < peers; ++p) {
      out.clear();
      s.picker.pick(p, 16, at_ns(1'000'000'000), out);
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["cancels_per_seek"] = static_cast<double>(cancelled) / static_cast<double>(state.iterations());
}

}  // namespace

BENCHMARK(BM_PickStreaming)->ArgsProduct({{1'000, 10'000, 100'000}, {10, 50, 200}, {1, 4}});
BENCHMARK(BM_PickOnly)->ArgsProduct({{1'000, 10'000, 100'000}, {10, 200}, {1, 4}});
BENCHMARK(BM_AvailabilityHaveAndLeave)->Arg(1'000)->Arg(10'000)->Arg(100'000);
BENCHMARK(BM_AvailabilityBitfield)->Arg(1'000)->Arg(10'000)->Arg(100'000);
BENCHMARK(BM_Seek)->ArgsProduct({{1'000, 10'000, 100'000}, {10, 200}});

BENCHMARK_MAIN();
