#include "engine/choker.hpp"

#include <algorithm>

namespace ph::engine {

std::vector<std::uint32_t> Choker::rechoke(const std::vector<ChokeCandidate>& peers, bool seeding,
                                           Clock::time_point now) {
  std::vector<const ChokeCandidate*> wanting;
  for (const auto& p : peers) {
    if (p.interested && !p.is_seed) wanting.push_back(&p);
  }
  std::sort(wanting.begin(), wanting.end(), [seeding](const ChokeCandidate* a, const ChokeCandidate* b) {
    const double ra = seeding ? a->upload_rate : a->download_rate;
    const double rb = seeding ? b->upload_rate : b->download_rate;
    if (ra != rb) return ra > rb;
    return a->peer < b->peer;
  });

  std::vector<std::uint32_t> unchoked;
  for (std::size_t i = 0; i < wanting.size() && unchoked.size() < static_cast<std::size_t>(kRegularSlots); ++i) {
    unchoked.push_back(wanting[i]->peer);
  }

  // The optimistic slot: keep it for 30 s while its peer is still a candidate, then rotate to the next choked
  // interested peer in connection order, so every peer gets its turn.
  auto is_candidate = [&](std::uint32_t id) {
    return std::any_of(wanting.begin(), wanting.end(), [id](const ChokeCandidate* c) { return c->peer == id; });
  };
  const bool expired = !has_optimistic_ || now - optimistic_since_ >= kOptimisticInterval || !is_candidate(optimistic_);
  if (expired) {
    std::vector<const ChokeCandidate*> choked;
    for (const auto* c : wanting) {
      if (std::find(unchoked.begin(), unchoked.end(), c->peer) == unchoked.end()) choked.push_back(c);
    }
    has_optimistic_ = !choked.empty();
    if (has_optimistic_) {
      std::sort(choked.begin(), choked.end(),
                [](const ChokeCandidate* a, const ChokeCandidate* b) { return a->connected_order < b->connected_order; });
      optimistic_ = choked[rotation_++ % choked.size()]->peer;
      optimistic_since_ = now;
    }
  }
  if (has_optimistic_ && std::find(unchoked.begin(), unchoked.end(), optimistic_) == unchoked.end()) {
    unchoked.push_back(optimistic_);
  }
  return unchoked;
}

}  // namespace ph::engine
