// The DHT routing table (BEP 5): 160-bit XOR metric, k-buckets that split only around our own id, node aging
// (good / questionable / bad), replacement of bad nodes from a per-bucket cache, and bucket refresh targets.
// Pure and clock-free: the current time is passed in by the caller.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "net/types.hpp"

namespace ph::dht {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;

// XOR metric helpers.
Id20 xor_distance(const Id20& a, const Id20& b);
int common_prefix_bits(const Id20& a, const Id20& b);  // 0..160
bool closer_to(const Id20& target, const Id20& a, const Id20& b);  // a strictly closer to target than b
// A uniformly random id that shares exactly `prefix_bits` leading bits with `own` (or at least that many when
// `at_least` is set, for the bucket that still contains our own id).
Id20 random_id_with_prefix(const Id20& own, int prefix_bits, bool at_least, std::mt19937_64& rng);
Id20 random_id(std::mt19937_64& rng);

enum class NodeState : std::uint8_t { good, questionable, bad };
const char* state_name(NodeState s);

struct RoutingEntry {
  Id20 id;
  PeerAddress address;
  TimePoint last_response{};  // last reply to one of our queries
  TimePoint last_query{};     // last query it sent us
  int fail_count = 0;         // consecutive unanswered queries
  bool ever_responded = false;
};

struct RoutingConfig {
  std::size_t k = 8;
  std::size_t replacement_slots = 8;  // per bucket: candidates waiting for a bad node to leave
  int bad_after_failures = 2;         // BEP 5 "fails to respond to multiple queries in a row"
  Duration good_window = std::chrono::minutes(15);
  Duration refresh_after = std::chrono::minutes(15);
};

enum class InsertResult : std::uint8_t {
  updated,      // already known: timestamps refreshed
  inserted,     // added to a bucket with room (possibly after splitting)
  replaced,     // took the place of a bad node
  cached,       // bucket full of good/questionable nodes: kept as a replacement candidate
  ignored,      // our own id, or an id already known at another address
};

class RoutingTable {
 public:
  explicit RoutingTable(const Id20& own, RoutingConfig config = {}, TimePoint now = {});

  const Id20& own_id() const { return own_; }
  const RoutingConfig& config() const { return config_; }

  // A node answered one of our queries (responded = true) or sent us a query. Only nodes that responded are
  // inserted (that proves the address is reachable); queries only refresh nodes already present.
  // When the result is `cached`, `to_ping` receives questionable nodes of that bucket the caller should ping so that
  // the dead ones can be found and replaced.
  InsertResult heard_from(const Id20& id, const PeerAddress& address, bool responded, TimePoint now,
                          std::vector<RoutingEntry>* to_ping = nullptr);
  // Would a newly responding node with this id find a place (room, a bad node to replace, or a split)?
  bool would_accept(const Id20& id, TimePoint now) const;
  // A query to this node timed out. A node that becomes bad is replaced by the freshest replacement candidate.
  void failed(const Id20& id, const PeerAddress& address, TimePoint now);
  // Returns the node's entry, if present in a bucket (not the replacement caches).
  const RoutingEntry* find(const Id20& id) const;

  NodeState state(const RoutingEntry& e, TimePoint now) const;
  // Up to n good or questionable nodes, closest to target first.
  std::vector<RoutingEntry> closest(const Id20& target, std::size_t n, TimePoint now) const;
  // Random ids inside every bucket idle for `refresh_after`; those buckets count as refreshed from now on.
  std::vector<Id20> refresh_targets(TimePoint now, std::mt19937_64& rng);
  // Questionable nodes not yet re-checked (oldest first), at most n; the caller pings them.
  std::vector<RoutingEntry> questionable(TimePoint now, std::size_t n) const;

  std::size_t size() const;              // nodes in buckets
  std::size_t replacement_count() const;  // nodes in replacement caches
  std::size_t bucket_count() const { return buckets_.size(); }
  std::size_t bucket_size(std::size_t index) const { return buckets_[index].live.size(); }
  std::size_t bucket_index(const Id20& id) const;
  std::vector<RoutingEntry> all() const;
  std::size_t count(NodeState s, TimePoint now) const;

 private:
  struct Bucket {
    std::vector<RoutingEntry> live;
    std::vector<RoutingEntry> replacements;  // newest at the back
    TimePoint last_changed{};
  };

  bool split_last();
  RoutingEntry* find_mut(const Id20& id);

  Id20 own_;
  RoutingConfig config_;
  // Bucket i holds nodes sharing exactly i leading bits with own_, except the last one, which holds everything
  // sharing at least (size - 1) bits; only the last bucket ever splits, so the table is dense near our id.
  std::vector<Bucket> buckets_;
};

}  // namespace ph::dht
