// Availability: how many connected peers have each piece, and the pieces kept ordered rarest-first.
//
// Every update is O(1) per piece: a peer's have moves its piece one bucket up by swapping it with the last piece of
// its bucket (libtorrent-style bucketed ordering), and a seed (have_all) is a single counter added to every piece, so
// seeds joining or leaving cost O(1) in total. Pieces the picker no longer needs (had, deselected) are "excluded":
// moved past every bucket so that a rarest-first scan only walks pieces still worth fetching.
#pragma once

#include <cstdint>
#include <vector>

#include "net/types.hpp"

namespace ph::engine {

class Availability {
 public:
  explicit Availability(std::uint32_t piece_count = 0);

  std::uint32_t piece_count() const { return static_cast<std::uint32_t>(count_.size()); }

  // One more / one fewer peer has piece p (have, bitfield bit, peer gone). Decrement below zero is ignored.
  void increment(PieceIndex p);
  void decrement(PieceIndex p);
  // A peer with every piece (have_all, or a complete bitfield) joined / left: O(1).
  void add_seed() { ++seeds_; }
  void remove_seed() {
    if (seeds_ > 0) --seeds_;
  }
  std::uint32_t seeds() const { return seeds_; }

  // Peers that have piece p (seeds included).
  std::uint32_t count(PieceIndex p) const { return count_[p] + seeds_; }

  // Excluded pieces stay counted but leave the rarest-first order. O(highest count) for a move, i.e. O(peers).
  void exclude(PieceIndex p);
  void include(PieceIndex p);
  bool excluded(PieceIndex p) const { return excluded_[p] != 0; }

  // Included pieces, rarest first: rarest(0) .. rarest(included_count() - 1). Ties are in no particular order.
  std::uint32_t included_count() const { return included_; }
  PieceIndex rarest(std::uint32_t i) const { return order_[i]; }

  // Self-check for tests: order_/pos_ are inverse permutations and counts are sorted within the included part.
  bool check_invariants() const;

 private:
  // Bucket b holds the included pieces whose own count_ is b: order_[start_[b] .. start_[b + 1]).
  // start_ has one entry per possible count plus a sentinel; start_.back() == included_.
  void grow_buckets(std::uint32_t highest);

  std::vector<std::uint32_t> count_;   // per piece, peers that have it (seeds not included)
  std::vector<std::uint8_t> excluded_; // per piece
  std::vector<PieceIndex> order_;      // included pieces sorted by count_, then excluded pieces
  std::vector<std::uint32_t> pos_;     // inverse of order_
  std::vector<std::uint32_t> start_;   // bucket starts, see above
  std::uint32_t included_ = 0;
  std::uint32_t seeds_ = 0;
};

}  // namespace ph::engine
