// Routing table: XOR metric, splitting only around our own id, node aging per BEP 5, replacement of bad nodes,
// refresh of idle buckets, and bounded size under a flood of ids.
#include "net/dht_routing_table.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace ph;
using namespace ph::dht;
using namespace std::chrono_literals;

namespace {

Id20 id_with_first_byte(std::uint8_t first, std::uint8_t last = 0) {
  Id20 id;
  id.bytes[0] = first;
  id.bytes[19] = last;
  return id;
}

PeerAddress addr(int n) { return PeerAddress::v4(0x0a000000u + static_cast<std::uint32_t>(n), 6881); }

const TimePoint t0 = TimePoint{} + 1h;

}  // namespace

TEST_CASE("dht xor metric helpers") {
  Id20 a = id_with_first_byte(0x80);
  Id20 b = id_with_first_byte(0x40);
  Id20 zero;
  CHECK(common_prefix_bits(zero, zero) == 160);
  CHECK(common_prefix_bits(zero, a) == 0);
  CHECK(common_prefix_bits(zero, b) == 1);
  CHECK(common_prefix_bits(zero, id_with_first_byte(0, 1)) == 159);
  CHECK(xor_distance(a, b) == id_with_first_byte(0xc0));
  CHECK(closer_to(zero, b, a));
  CHECK_FALSE(closer_to(zero, a, b));
  CHECK_FALSE(closer_to(zero, a, a));

  std::mt19937_64 rng(7);
  Id20 own = random_id(rng);
  for (int bits : {0, 1, 7, 8, 9, 100, 159}) {
    for (int i = 0; i < 20; ++i) {
      CHECK(common_prefix_bits(own, random_id_with_prefix(own, bits, false, rng)) == bits);
      CHECK(common_prefix_bits(own, random_id_with_prefix(own, bits, true, rng)) >= bits);
    }
  }
}

TEST_CASE("dht routing table splits only the bucket holding our own id") {
  Id20 own;  // all zero: bucket i holds ids whose first set bit is bit i
  RoutingTable table(own, {}, t0);
  // Eight nodes far away (first bit set) fill bucket 0 without a split being needed.
  for (int i = 0; i < 8; ++i) {
    CHECK(table.heard_from(id_with_first_byte(0x80, static_cast<std::uint8_t>(i)), addr(i), true, t0) ==
          InsertResult::inserted);
  }
  CHECK(table.bucket_count() == 1);
  // A ninth node: the only bucket contains our id, so it splits; the far half stays full.
  CHECK(table.heard_from(id_with_first_byte(0x80, 99), addr(99), true, t0) == InsertResult::cached);
  CHECK(table.bucket_count() == 2);
  CHECK(table.bucket_size(0) == 8);
  CHECK(table.bucket_size(1) == 0);
  // The far bucket (index 0) no longer contains our id: it never splits again; newcomers go to the cache.
  for (int i = 0; i < 20; ++i) {
    CHECK(table.heard_from(id_with_first_byte(0xc0, static_cast<std::uint8_t>(i)), addr(100 + i), true, t0) ==
          InsertResult::cached);
  }
  CHECK(table.bucket_count() == 2);
  CHECK(table.size() == 8);
  CHECK(table.replacement_count() == 8);  // bounded by replacement_slots
  // Nodes closer to us make the last bucket split repeatedly.
  for (int shift = 1; shift < 8; ++shift) {
    for (int i = 0; i < 8; ++i) {
      table.heard_from(id_with_first_byte(static_cast<std::uint8_t>(0x80 >> shift), static_cast<std::uint8_t>(i)),
                       addr(1000 + shift * 10 + i), true, t0);
    }
  }
  CHECK(table.size() == 64);
  for (std::size_t i = 0; i + 1 < table.bucket_count(); ++i) {
    INFO("bucket " << i);
    CHECK(table.bucket_size(i) <= 8);
  }
  CHECK(table.bucket_index(id_with_first_byte(0x10)) == 3);
  // A node in the last bucket goes to the right place.
  auto closest = table.closest(id_with_first_byte(0x01), 3, t0);
  REQUIRE(closest.size() == 3);
  CHECK(closest[0].id.bytes[0] == 0x01);
}

TEST_CASE("dht routing table node aging: good, questionable, bad") {
  Id20 own;
  RoutingTable table(own, {}, t0);
  Id20 n = id_with_first_byte(0x80, 1);
  // A node that only queried us is not inserted (its address is unproven).
  CHECK(table.heard_from(n, addr(1), false, t0) == InsertResult::ignored);
  CHECK(table.size() == 0);
  CHECK(table.heard_from(n, addr(1), true, t0) == InsertResult::inserted);
  const RoutingEntry* e = table.find(n);
  REQUIRE(e);
  CHECK(table.state(*e, t0) == NodeState::good);
  CHECK(table.state(*e, t0 + 14min) == NodeState::good);
  CHECK(table.state(*e, t0 + 15min) == NodeState::questionable);
  // Having ever responded, a query from it within 15 minutes keeps it good.
  CHECK(table.heard_from(n, addr(1), false, t0 + 20min) == InsertResult::updated);
  CHECK(table.state(*table.find(n), t0 + 20min) == NodeState::good);
  CHECK(table.state(*table.find(n), t0 + 36min) == NodeState::questionable);
  CHECK(table.questionable(t0 + 36min, 10).size() == 1);
  // One failure leaves it questionable; two in a row make it bad; an answer resets the count.
  table.failed(n, addr(1), t0 + 36min);
  CHECK(table.state(*table.find(n), t0 + 36min) == NodeState::questionable);
  table.heard_from(n, addr(1), true, t0 + 37min);
  CHECK(table.find(n)->fail_count == 0);
  table.failed(n, addr(1), t0 + 38min);
  table.failed(n, addr(1), t0 + 38min);
  CHECK(table.state(*table.find(n), t0 + 38min) == NodeState::bad);
  CHECK(table.closest(n, 8, t0 + 38min).empty());  // bad nodes are never handed out
  // The same id from another address is ignored while the known entry is good.
  Id20 m = id_with_first_byte(0x80, 2);
  table.heard_from(m, addr(2), true, t0 + 38min);
  CHECK(table.heard_from(m, addr(3), true, t0 + 38min) == InsertResult::ignored);
  CHECK(table.find(m)->address == addr(2));
}

TEST_CASE("dht routing table replaces bad nodes") {
  Id20 own;
  RoutingTable table(own, {}, t0);
  // Fill the far bucket, force a split so that bucket 0 is a non-splittable full bucket.
  for (int i = 0; i < 8; ++i) table.heard_from(id_with_first_byte(0x80, static_cast<std::uint8_t>(i)), addr(i), true, t0);
  table.heard_from(id_with_first_byte(0x01), addr(50), true, t0);  // splits; lands near us
  REQUIRE(table.bucket_count() >= 2);
  REQUIRE(table.bucket_size(0) == 8);

  // Replacement from the cache when a node goes bad.
  Id20 waiting = id_with_first_byte(0x90, 1);
  std::vector<RoutingEntry> to_ping;
  CHECK(table.heard_from(waiting, addr(60), true, t0 + 20min, &to_ping) == InsertResult::cached);
  CHECK(to_ping.size() == 8);  // all questionable after 20 minutes: ping them
  Id20 victim = id_with_first_byte(0x80, 3);
  table.failed(victim, addr(3), t0 + 21min);
  table.failed(victim, addr(3), t0 + 21min);
  CHECK_FALSE(table.find(victim));
  REQUIRE(table.find(waiting));
  CHECK(table.bucket_size(0) == 8);

  // With an empty cache, a bad node stays until a new responder takes its slot.
  Id20 victim2 = id_with_first_byte(0x80, 4);
  table.failed(victim2, addr(4), t0 + 22min);
  table.failed(victim2, addr(4), t0 + 22min);
  REQUIRE(table.find(victim2));
  CHECK(table.state(*table.find(victim2), t0 + 22min) == NodeState::bad);
  CHECK(table.would_accept(id_with_first_byte(0xa0), t0 + 22min));
  CHECK(table.heard_from(id_with_first_byte(0xa0), addr(70), true, t0 + 22min) == InsertResult::replaced);
  CHECK_FALSE(table.find(victim2));
  CHECK(table.bucket_size(0) == 8);
  CHECK_FALSE(table.would_accept(id_with_first_byte(0xb0), t0 + 22min));
}

TEST_CASE("dht routing table refreshes buckets idle for 15 minutes") {
  std::mt19937_64 rng(1);
  Id20 own = random_id(rng);
  RoutingTable table(own, {}, t0);
  for (int i = 0; i < 200; ++i) table.heard_from(random_id(rng), addr(i), true, t0);
  CHECK(table.refresh_targets(t0 + 14min, rng).empty());
  auto targets = table.refresh_targets(t0 + 15min, rng);
  CHECK(targets.size() == table.bucket_count());
  std::set<std::size_t> buckets;
  for (const auto& t : targets) buckets.insert(table.bucket_index(t));
  CHECK(buckets.size() == table.bucket_count());  // one target inside each bucket
  CHECK(table.refresh_targets(t0 + 16min, rng).empty());  // they count as refreshed now
  // Activity in a bucket postpones its refresh.
  auto some = table.all().front();
  table.heard_from(some.id, some.address, true, t0 + 29min);
  auto later = table.refresh_targets(t0 + 30min, rng);
  CHECK(later.size() == table.bucket_count() - 1);
}

TEST_CASE("dht routing table stays bounded under a flood of ids") {
  std::mt19937_64 rng(3);
  Id20 own = random_id(rng);
  RoutingTable table(own, {}, t0);
  for (int i = 0; i < 100000; ++i) table.heard_from(random_id(rng), addr(i), true, t0);
  CHECK(table.bucket_count() <= 160);
  CHECK(table.size() <= table.bucket_count() * 8);
  CHECK(table.replacement_count() <= table.bucket_count() * 8);
  // With random ids, about log2(100000 / 8) buckets are needed.
  CHECK(table.bucket_count() >= 10);
  CHECK(table.bucket_count() <= 20);
  // closest() really is the closest: compare with a brute-force scan.
  Id20 target = random_id(rng);
  auto all = table.all();
  std::sort(all.begin(), all.end(), [&](const auto& a, const auto& b) { return closer_to(target, a.id, b.id); });
  auto best = table.closest(target, 8, t0);
  REQUIRE(best.size() == 8);
  for (std::size_t i = 0; i < 8; ++i) CHECK(best[i].id == all[i].id);
}
