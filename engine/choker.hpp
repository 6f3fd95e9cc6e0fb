// Choker: decides which peers we upload to. Four regular slots chosen every 10 s by rate (the rate they give us
// while downloading, the rate we manage to give them while seeding) plus one optimistic slot rotated every 30 s so
// that new peers get a chance to prove themselves. Pure: the caller passes the peers and the time in.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace ph::engine {

struct ChokeCandidate {
  std::uint32_t peer = 0;             // the torrent's small peer id
  bool interested = false;            // the peer wants data from us
  bool is_seed = false;               // the peer has everything: it never needs our upload
  double download_rate = 0;           // bytes/s we receive from it
  double upload_rate = 0;             // bytes/s we send to it
  std::uint64_t connected_order = 0;  // larger = connected later (for the optimistic rotation)
};

class Choker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr int kRegularSlots = 4;
  static constexpr auto kRechokeInterval = std::chrono::seconds(10);
  static constexpr auto kOptimisticInterval = std::chrono::seconds(30);

  // Returns the peers to unchoke (every other one is choked). `seeding`: choose by upload rate.
  std::vector<std::uint32_t> rechoke(const std::vector<ChokeCandidate>& peers, bool seeding, Clock::time_point now);

  std::uint32_t optimistic() const { return optimistic_; }
  bool has_optimistic() const { return has_optimistic_; }

 private:
  std::uint32_t optimistic_ = 0;
  bool has_optimistic_ = false;
  Clock::time_point optimistic_since_{};
  std::uint64_t rotation_ = 0;
};

}  // namespace ph::engine
