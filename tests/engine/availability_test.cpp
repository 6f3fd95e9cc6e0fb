// Availability: counts, seeds and the bucketed rarest-first order, checked against a brute-force model.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <vector>

#include "engine/availability.hpp"

using ph::engine::Availability;

TEST_CASE("availability counts haves and seeds", "[availability]") {
  Availability a(5);
  REQUIRE(a.included_count() == 5);
  a.increment(2);
  a.increment(2);
  a.increment(4);
  CHECK(a.count(2) == 2);
  CHECK(a.count(4) == 1);
  CHECK(a.count(0) == 0);
  a.add_seed();
  CHECK(a.count(0) == 1);
  CHECK(a.count(2) == 3);
  a.remove_seed();
  a.remove_seed();  // below zero is ignored
  CHECK(a.seeds() == 0);
  a.decrement(0);  // below zero is ignored
  CHECK(a.count(0) == 0);
  a.increment(99);  // out of range is ignored
  REQUIRE(a.check_invariants());
}

TEST_CASE("availability orders included pieces rarest first", "[availability]") {
  Availability a(6);
  const int counts[6] = {3, 0, 5, 1, 1, 2};
  for (ph::PieceIndex p = 0; p < 6; ++p)
    for (int i = 0; i < counts[p]; ++i) a.increment(p);
  REQUIRE(a.check_invariants());
  std::vector<std::uint32_t> seen;
  for (std::uint32_t i = 0; i < a.included_count(); ++i) seen.push_back(a.count(a.rarest(i)));
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(a.rarest(0) == 1);

  a.exclude(1);
  a.exclude(2);
  CHECK(a.included_count() == 4);
  CHECK(a.excluded(1));
  for (std::uint32_t i = 0; i < a.included_count(); ++i) CHECK(a.rarest(i) != 1);
  a.increment(1);  // excluded pieces keep counting
  CHECK(a.count(1) == 1);
  a.include(1);
  REQUIRE(a.check_invariants());
  CHECK(a.included_count() == 5);
}

TEST_CASE("availability matches a brute-force model under random updates", "[availability]") {
  std::mt19937 rng(7);
  const std::uint32_t n = 300;
  Availability a(n);
  std::vector<std::uint32_t> model(n, 0);
  std::vector<bool> excl(n, false);
  std::uint32_t seeds = 0;
  for (int step = 0; step < 20000; ++step) {
    const auto p = static_cast<ph::PieceIndex>(rng() % n);
    switch (rng() % 7) {
      case 0: case 1: case 2: a.increment(p); ++model[p]; break;
      case 3: case 4: a.decrement(p); if (model[p]) --model[p]; break;
      case 5: if (rng() % 2) { a.exclude(p); excl[p] = true; } else { a.include(p); excl[p] = false; } break;
      case 6: if (rng() % 2) { a.add_seed(); ++seeds; } else { a.remove_seed(); if (seeds) --seeds; } break;
    }
    if (step % 997 == 0) REQUIRE(a.check_invariants());
  }
  REQUIRE(a.check_invariants());
  std::uint32_t included = 0;
  for (std::uint32_t p = 0; p < n; ++p) {
    CHECK(a.count(p) == model[p] + seeds);
    CHECK(a.excluded(p) == excl[p]);
    included += excl[p] ? 0 : 1;
  }
  REQUIRE(a.included_count() == included);
  for (std::uint32_t i = 1; i < a.included_count(); ++i) CHECK(a.count(a.rarest(i - 1)) <= a.count(a.rarest(i)));
}
