// UDP tracker protocol (BEP 15): the pure packet codec (requests and replies, both directions so tests can play the
// tracker) and a sans-I/O client state machine. The machine is fed requests, datagrams and timer ticks with the
// current time passed in; it emits datagrams to send, the next time it wants a tick, and completions. It reuses a
// connection id for its lifetime (60 s), checks transaction ids and actions, and retransmits on the 15 * 2^n s
// schedule (the base is configurable so that tests run in milliseconds).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/result.hpp"
#include "net/tracker_http.hpp"
#include "net/types.hpp"

namespace ph::tracker::udp {

inline constexpr std::uint64_t kProtocolId = 0x41727101980ull;

enum class Action : std::uint32_t { connect = 0, announce = 1, scrape = 2, error = 3 };

// ---- Codec --------------------------------------------------------------------------------------------------------

std::string encode_connect_request(std::uint32_t transaction_id);
std::string encode_announce_request(std::uint64_t connection_id, std::uint32_t transaction_id,
                                    const AnnounceRequest& req);
std::string encode_scrape_request(std::uint64_t connection_id, std::uint32_t transaction_id,
                                  std::span<const InfoHash> hashes);

// A request as a tracker sees it (used by test trackers and for round trips).
struct Request {
  Action action = Action::connect;
  std::uint64_t connection_id = 0;
  std::uint32_t transaction_id = 0;
  AnnounceRequest announce;      // action == announce
  std::vector<InfoHash> hashes;  // action == scrape
};
Result<Request> decode_request(std::string_view datagram);

std::string encode_connect_reply(std::uint32_t transaction_id, std::uint64_t connection_id);
std::string encode_announce_reply(std::uint32_t transaction_id, std::int64_t interval, std::int64_t leechers,
                                  std::int64_t seeders, std::span<const PeerAddress> peers);  // peers of one family
std::string encode_scrape_reply(std::uint32_t transaction_id, std::span<const ScrapeEntry> entries);
std::string encode_error_reply(std::uint32_t transaction_id, std::string_view message);

struct Reply {
  Action action = Action::connect;
  std::uint32_t transaction_id = 0;
  std::uint64_t connection_id = 0;  // connect
  AnnounceResponse announce;        // announce: interval, complete (seeders), incomplete (leechers), peers
  std::vector<ScrapeEntry> scrape;  // scrape, labelled with the hashes that were asked for, in order
  std::string error;                // error: the tracker's message (a trailing NUL is dropped)
};

// Peeks at action and transaction id (first 8 bytes). nullopt when the datagram is shorter than 8 bytes.
std::optional<std::pair<std::uint32_t, std::uint32_t>> peek_header(std::string_view datagram);

// Decodes a reply. Announce replies carry 6-byte peers on IPv4 and 18-byte peers on IPv6 (`v6_peers`). Scrape
// replies must hold exactly one entry per `asked` hash. Truncated or ill-sized packets are errors.
Result<Reply> decode_reply(std::string_view datagram, bool v6_peers, std::span<const InfoHash> asked = {},
                           const ResponseLimits& limits = {});

// ---- Client state machine -----------------------------------------------------------------------------------------

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

struct MachineConfig {
  std::chrono::milliseconds retransmit_base{15'000};  // BEP 15: 15 s; timeout of attempt n is base * 2^n
  unsigned max_retransmits = 8;                       // BEP 15: n grows up to 8; then the request fails
  std::chrono::milliseconds connection_id_lifetime{60'000};
  bool v6 = false;                  // the socket's family decides the peer entry size
  std::size_t max_datagram = 8192;  // a reply larger than this is refused as oversized
  ResponseLimits limits;
  std::uint64_t seed = 0;  // transaction-id generator seed; 0 means random
};

class Machine {
 public:
  using RequestId = std::uint64_t;

  struct Completion {
    RequestId id = 0;
    bool is_scrape = false;
    Result<AnnounceResponse> announce = Error{"not an announce"};
    Result<ScrapeResponse> scrape = Error{"not a scrape"};
  };

  struct Stats {
    std::uint64_t datagrams_sent = 0;
    std::uint64_t retransmits = 0;
    std::uint64_t connects = 0;
    std::uint64_t ignored_datagrams = 0;  // unknown transaction id, or too short to carry one
  };

  explicit Machine(MachineConfig config = {});

  RequestId announce(const AnnounceRequest& req, TimePoint now);
  RequestId scrape(std::vector<InfoHash> hashes, TimePoint now);
  void cancel(RequestId id);  // no completion will be produced for it

  void on_datagram(std::string_view datagram, TimePoint now);
  void on_timer(TimePoint now);

  std::vector<std::string> take_datagrams();
  std::vector<Completion> take_completions();
  std::optional<TimePoint> next_timer() const;  // when on_timer should be called; nullopt when idle

  bool has_connection_id(TimePoint now) const;
  const Stats& stats() const { return stats_; }
  std::string last_ignored_reason() const { return last_ignored_; }

 private:
  struct Pending {
    RequestId id = 0;
    bool is_scrape = false;
    AnnounceRequest announce;
    std::vector<InfoHash> hashes;
    bool sent = false;  // false: waiting for a connection id
    std::uint32_t transaction_id = 0;
    unsigned attempt = 0;
    TimePoint deadline{};
  };
  struct Connecting {
    std::uint32_t transaction_id = 0;
    unsigned attempt = 0;
    TimePoint deadline{};
  };

  RequestId add(Pending p, TimePoint now);
  void pump(TimePoint now);  // connect if needed, send what waits for a connection id
  void send_request(Pending& p, TimePoint now);
  std::chrono::milliseconds timeout_for(unsigned attempt) const;
  void fail(Pending& p, std::string message);
  void fail_waiting(const std::string& message);
  std::uint32_t new_transaction_id();

  MachineConfig config_;
  std::mt19937_64 rng_;
  RequestId next_id_ = 1;
  std::deque<Pending> pending_;
  std::optional<std::uint64_t> connection_id_;
  TimePoint connection_id_at_{};
  std::optional<Connecting> connecting_;
  std::vector<std::string> out_;
  std::vector<Completion> done_;
  Stats stats_;
  std::string last_ignored_;
};

}  // namespace ph::tracker::udp
