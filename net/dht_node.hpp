// A sans-I/O DHT node (BEP 5). It consumes datagrams (with their source address and the current time) and emits
// datagrams and a timer deadline; it never touches a socket or reads a clock, so a whole network of nodes can run
// in one process on a virtual clock. It serves ping / find_node / get_peers / announce_peer, keeps the routing
// table healthy, and runs iterative lookups (alpha queries in flight, converging on the k closest responsive nodes).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/dht_routing_table.hpp"
#include "net/krpc.hpp"
#include "net/types.hpp"

namespace ph::dht {

struct Datagram {
  PeerAddress to;
  std::string bytes;
};

struct NodeConfig {
  Id20 id;                 // all-zero: drawn from the seeded generator
  std::uint64_t seed = 0;  // DhtService replaces 0 with real entropy; simulations pass fixed numbers
  RoutingConfig routing;
  std::vector<PeerAddress> bootstrap;  // asked when the routing table is (nearly) empty
  std::string version = std::string("PH\x00\x01", 4);
  krpc::Limits limits;
  bool read_only = false;  // BEP 43: ask others not to add us (the bt-dht tool)

  // Lookups.
  std::size_t alpha = 3;
  Duration query_timeout = std::chrono::seconds(4);
  std::size_t max_lookups = 32;             // concurrent; more are refused
  std::size_t max_lookup_candidates = 64;   // closest nodes remembered per lookup
  std::size_t max_pending_queries = 512;    // outstanding queries of all kinds
  Duration reannounce_interval = std::chrono::minutes(15);
  Duration bootstrap_retry = std::chrono::seconds(30);
  Duration maintenance_interval = std::chrono::seconds(5);

  // Serving.
  Duration token_rotation = std::chrono::minutes(5);
  Duration peer_ttl = std::chrono::minutes(30);
  std::size_t max_stored_hashes = 2000;
  std::size_t max_peers_per_hash = 100;
  std::size_t max_values_per_reply = 50;
  std::size_t max_reply_bytes = 1200;  // below one Ethernet MTU: a reply never fragments or amplifies much
  // Per source IP token bucket for incoming queries (and malformed packets that would get an error reply).
  double rate_per_second = 50;
  double rate_burst = 100;
  std::size_t max_rate_entries = 4096;
  // Loopback sources (127.0.0.0/8, ::1) are our own machine: test swarms and local tools put every node on one IP,
  // which a per-IP limit would throttle as if it were a single flooder.
  bool rate_limit_loopback = false;
};

// One step of a lookup, for tools that show how Kademlia converges.
struct HopEvent {
  enum class Kind : std::uint8_t { queried, responded, failed, announced };
  std::uint64_t lookup = 0;
  Id20 target;
  Kind kind = Kind::queried;
  PeerAddress node;
  std::optional<Id20> node_id;  // unknown for bootstrap addresses until they answer
  std::size_t nodes_returned = 0;
  std::size_t values_returned = 0;
  bool token = false;
  std::string detail;  // "timeout", an error message
};
const char* hop_kind_name(HopEvent::Kind k);

struct LookupResult {
  std::uint64_t lookup = 0;
  Id20 target;
  std::size_t queried = 0;
  std::size_t responded = 0;
  std::size_t failed = 0;
  std::size_t peers = 0;          // distinct peers reported
  std::size_t announced_to = 0;   // announce: nodes that accepted announce_peer
  std::vector<krpc::NodeInfo> closest;  // the k closest nodes that responded
};

struct NodeStats {
  std::uint64_t packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t queries_in = 0, responses_in = 0, errors_in = 0;
  std::uint64_t queries_out = 0, timeouts = 0;
  std::uint64_t malformed = 0, rate_limited = 0, unexpected_responses = 0;
  std::uint64_t bad_tokens = 0, announces_stored = 0, store_full = 0;
  std::size_t routing_nodes = 0, routing_good = 0, routing_buckets = 0, replacement_nodes = 0;
  std::size_t stored_hashes = 0, stored_peers = 0, active_lookups = 0, pending_queries = 0, rate_entries = 0;
};

class DhtNode {
 public:
  using LookupId = std::uint64_t;
  using PeersCallback = std::function<void(const std::vector<PeerAddress>&)>;
  using DoneCallback = std::function<void(const LookupResult&)>;
  using PingCallback = std::function<void(std::optional<Id20>)>;  // nullopt: no answer
  using HopObserver = std::function<void(const HopEvent&)>;

  explicit DhtNode(NodeConfig config, TimePoint now = {});

  const Id20& id() const { return id_; }
  const NodeConfig& config() const { return config_; }
  const RoutingTable& routing_table() const { return table_; }

  // Input: one datagram from `from`. Output: take_outgoing(). Malformed input is counted and dropped or answered
  // with an error; it never throws.
  void receive(std::string_view datagram, const PeerAddress& from, TimePoint now);
  // Timeouts, token rotation, peer expiry, bucket refresh, re-announces. Call at next_deadline() (or any time).
  void tick(TimePoint now);
  std::vector<Datagram> take_outgoing();
  TimePoint next_deadline() const;

  // Bootstrap: remember these addresses and look up our own id through them.
  void bootstrap(const std::vector<PeerAddress>& nodes, TimePoint now);
  // A node learnt elsewhere (the peer wire PORT message): ping it; it enters the table if it answers.
  void add_node(const PeerAddress& address, TimePoint now);
  void ping(const PeerAddress& address, TimePoint now, PingCallback on_reply = {});

  // Lookups. Callbacks run from inside receive()/tick(); they may start new lookups. Returns 0 when refused
  // (too many lookups already running).
  LookupId find_node(const Id20& target, DoneCallback on_done, TimePoint now);
  LookupId get_peers(const InfoHash& info_hash, PeersCallback on_peers, DoneCallback on_done, TimePoint now);
  // get_peers, then announce_peer with each of the k closest nodes' tokens. port 0: implied_port (our UDP port).
  LookupId announce(const InfoHash& info_hash, std::uint16_t port, PeersCallback on_peers, DoneCallback on_done,
                    TimePoint now);
  void cancel(LookupId id);

  // Keep announcing while a torrent is active: now, then every reannounce_interval.
  void start_announcing(const InfoHash& info_hash, std::uint16_t port, TimePoint now);
  void stop_announcing(const InfoHash& info_hash);

  void set_hop_observer(HopObserver observer) { hop_observer_ = std::move(observer); }
  NodeStats stats(TimePoint now) const;
  // Good nodes from the routing table, freshest first: what to save across restarts and bootstrap from next time.
  std::vector<krpc::NodeInfo> known_nodes(TimePoint now, std::size_t max = 64) const;
  // Peers stored for an info-hash (for tests and the metrics page).
  std::vector<PeerAddress> stored_peers(const InfoHash& info_hash) const;

 private:
  enum class LookupKind : std::uint8_t { find_node, get_peers, announce };
  enum class CandidateState : std::uint8_t { fresh, in_flight, responded, failed };
  struct Candidate {
    std::optional<Id20> id;  // nullopt for bootstrap addresses
    PeerAddress address;
    CandidateState state = CandidateState::fresh;
    std::string token;
  };
  struct Lookup {
    LookupId id = 0;
    LookupKind kind = LookupKind::find_node;
    Id20 target;
    std::uint16_t port = 0;
    PeersCallback on_peers;
    DoneCallback on_done;
    std::vector<Candidate> candidates;  // with ids, sorted by distance to target
    std::vector<Candidate> seeds;       // bootstrap addresses, ids unknown
    std::vector<PeerAddress> peers_seen;
    std::size_t in_flight = 0;
    bool announcing = false;  // phase 2 of announce
    bool join = false;        // our own id, looked up to (re)join: afterwards the thin far buckets are filled
    std::size_t announce_pending = 0;
    LookupResult result;
  };
  struct Pending {
    PeerAddress to;
    krpc::Method method = krpc::Method::ping;
    std::optional<Id20> expected_id;
    LookupId lookup = 0;
    TimePoint deadline{};
    PingCallback on_ping;
  };
  struct StoredPeer {
    PeerAddress address;
    TimePoint expires{};
  };
  struct RateBucket {
    double tokens = 0;
    TimePoint last{};
  };

  // Sending.
  bool send_query(krpc::Query q, const PeerAddress& to, std::optional<Id20> expected_id, LookupId lookup,
                  TimePoint now, PingCallback on_ping = {});
  void send(const krpc::Message& m, const PeerAddress& to);
  std::string next_transaction_id();

  // Serving.
  void handle_query(const krpc::Message& m, const PeerAddress& from, TimePoint now);
  krpc::Response base_response(const Id20& target, const PeerAddress& from, bool want_v4, bool want_v6,
                               TimePoint now) const;
  std::string make_token(const PeerAddress& from, const InfoHash& hash, int generation) const;
  bool token_valid(std::string_view token, const PeerAddress& from, const InfoHash& hash) const;
  void store_peer(const InfoHash& hash, const PeerAddress& peer, TimePoint now);
  bool rate_allow(const PeerAddress& from, TimePoint now);

  // Client side.
  void handle_reply(const krpc::Message& m, const PeerAddress& from, TimePoint now);
  void on_query_failed(const std::string& tid, Pending p, const std::string& why, TimePoint now);
  void heard_node(const Id20& id, const PeerAddress& address, bool responded, TimePoint now);
  LookupId start_lookup(LookupKind kind, const Id20& target, std::uint16_t port, PeersCallback on_peers,
                        DoneCallback on_done, TimePoint now);
  void add_candidate(Lookup& l, const krpc::NodeInfo& n);
  void step(LookupId id, TimePoint now);
  void finish(LookupId id, TimePoint now);
  void join_lookup(TimePoint now);
  void emit_hop(const Lookup& l, HopEvent::Kind kind, const PeerAddress& node, std::optional<Id20> node_id,
                std::size_t nodes = 0, std::size_t values = 0, bool token = false, std::string detail = {});
  void maintenance(TimePoint now);

  NodeConfig config_;
  Id20 id_;
  std::mt19937_64 rng_;
  RoutingTable table_;
  std::vector<Datagram> outgoing_;
  std::map<std::string, Pending> pending_;  // by transaction id
  std::uint32_t next_tid_ = 0;
  std::map<LookupId, Lookup> lookups_;
  LookupId next_lookup_ = 1;
  // User callbacks are queued and run once the node's state is consistent again, so they may call back in.
  std::vector<std::function<void()>> deferred_;
  void run_deferred();
  std::vector<PeerAddress> bootstrap_nodes_;

  std::array<std::uint8_t, 16> secret_{}, previous_secret_{};
  TimePoint secret_rotated_{};
  std::map<InfoHash, std::vector<StoredPeer>> store_;
  std::size_t stored_peer_count_ = 0;
  std::map<std::array<std::uint8_t, 17>, RateBucket> rate_;

  struct Announcing {
    std::uint16_t port = 0;
    TimePoint next{};
  };
  std::map<InfoHash, Announcing> announcing_;
  TimePoint next_maintenance_{};
  TimePoint next_bootstrap_{};
  Duration bootstrap_backoff_{};

  HopObserver hop_observer_;
  NodeStats stats_;
};

}  // namespace ph::dht
