#include "engine/choker.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using ph::engine::ChokeCandidate;
using ph::engine::Choker;

namespace {
bool contains(const std::vector<std::uint32_t>& v, std::uint32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }
}  // namespace

TEST_CASE("choker unchokes the four fastest interested peers plus one optimistic") {
  std::vector<ChokeCandidate> peers;
  for (std::uint32_t i = 0; i < 8; ++i) peers.push_back({i, true, false, double(i) * 100, 0, i});
  peers.push_back({8, false, false, 1e9, 0, 8});  // not interested: never unchoked
  peers.push_back({9, true, true, 1e9, 0, 9});    // a seed never needs our upload
  Choker choker;
  auto now = Choker::Clock::now();
  auto unchoked = choker.rechoke(peers, false, now);
  REQUIRE(unchoked.size() == 5);
  for (std::uint32_t fast : {7u, 6u, 5u, 4u}) CHECK(contains(unchoked, fast));
  CHECK_FALSE(contains(unchoked, 8));
  CHECK_FALSE(contains(unchoked, 9));
  REQUIRE(choker.has_optimistic());
  CHECK(choker.optimistic() < 4);

  // Within 30 s the optimistic peer stays; after 30 s it rotates to another choked peer.
  const auto first = choker.optimistic();
  choker.rechoke(peers, false, now + std::chrono::seconds(10));
  CHECK(choker.optimistic() == first);
  choker.rechoke(peers, false, now + std::chrono::seconds(31));
  CHECK(choker.optimistic() != first);
}

TEST_CASE("choker in seeding mode ranks by upload rate") {
  std::vector<ChokeCandidate> peers;
  for (std::uint32_t i = 0; i < 6; ++i) peers.push_back({i, true, false, 0, double(10 - i), i});
  Choker choker;
  auto unchoked = choker.rechoke(peers, true, Choker::Clock::now());
  for (std::uint32_t fast : {0u, 1u, 2u, 3u}) CHECK(contains(unchoked, fast));
  CHECK(unchoked.size() == 5);
}
