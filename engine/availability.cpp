// Availability: bucketed rarest-first order with O(1) moves between neighbouring buckets (see the header).
#include "engine/availability.hpp"

#include <utility>

namespace ph::engine {

Availability::Availability(std::uint32_t piece_count)
    : count_(piece_count, 0), excluded_(piece_count, 0), order_(piece_count), pos_(piece_count),
      start_{0, piece_count}, included_(piece_count) {
  for (std::uint32_t i = 0; i < piece_count; ++i) {
    order_[i] = i;
    pos_[i] = i;
  }
}

void Availability::grow_buckets(std::uint32_t highest) {
  // start_ holds buckets 0..H and the sentinel (== included_); a new empty bucket starts at the sentinel.
  while (start_.size() < static_cast<std::size_t>(highest) + 2) start_.insert(start_.end() - 1, start_.back());
}

namespace {
inline void swap_positions(std::vector<PieceIndex>& order, std::vector<std::uint32_t>& pos, std::uint32_t a,
                           std::uint32_t b) {
  if (a == b) return;
  std::swap(order[a], order[b]);
  pos[order[a]] = a;
  pos[order[b]] = b;
}
}  // namespace

void Availability::increment(PieceIndex p) {
  if (p >= count_.size()) return;
  const std::uint32_t c = count_[p]++;
  if (excluded_[p]) return;
  grow_buckets(c + 1);
  // Swap to the end of bucket c, then shrink bucket c by one: p becomes the first piece of bucket c + 1.
  const std::uint32_t last = start_[c + 1] - 1;
  swap_positions(order_, pos_, pos_[p], last);
  --start_[c + 1];
}

void Availability::decrement(PieceIndex p) {
  if (p >= count_.size() || count_[p] == 0) return;
  const std::uint32_t c = count_[p]--;
  if (excluded_[p]) return;
  // Swap to the start of bucket c, then grow bucket c - 1 by one: p becomes its last piece.
  const std::uint32_t first = start_[c];
  swap_positions(order_, pos_, pos_[p], first);
  ++start_[c];
}

void Availability::exclude(PieceIndex p) {
  if (p >= count_.size() || excluded_[p]) return;
  const auto highest = static_cast<std::uint32_t>(start_.size() - 2);
  // Walk up one bucket at a time; the region past the last bucket is the excluded part.
  for (std::uint32_t b = count_[p]; b <= highest; ++b) {
    const std::uint32_t last = start_[b + 1] - 1;
    swap_positions(order_, pos_, pos_[p], last);
    --start_[b + 1];
  }
  included_ = start_.back();
  excluded_[p] = 1;
}

void Availability::include(PieceIndex p) {
  if (p >= count_.size() || !excluded_[p]) return;
  grow_buckets(count_[p]);
  const auto highest = static_cast<std::uint32_t>(start_.size() - 2);
  // Enter as the last piece of the highest bucket, then walk down to bucket count_[p].
  swap_positions(order_, pos_, pos_[p], start_.back());
  ++start_.back();
  for (std::uint32_t b = highest; b > count_[p]; --b) {
    swap_positions(order_, pos_, pos_[p], start_[b]);
    ++start_[b];
  }
  included_ = start_.back();
  excluded_[p] = 0;
}

bool Availability::check_invariants() const {
  const auto n = static_cast<std::uint32_t>(count_.size());
  if (start_.back() != included_ || start_.front() != 0) return false;
  for (std::uint32_t i = 0; i < n; ++i) {
    if (pos_[order_[i]] != i) return false;
    const PieceIndex p = order_[i];
    if ((i < included_) == (excluded_[p] != 0)) return false;
    if (i < included_) {
      const std::uint32_t c = count_[p];
      if (c + 1 >= start_.size() || i < start_[c] || i >= start_[c + 1]) return false;
    }
  }
  for (std::size_t b = 0; b + 1 < start_.size(); ++b)
    if (start_[b] > start_[b + 1]) return false;
  return true;
}

}  // namespace ph::engine
