// Announce scheduling for one torrent (BEP 3 events, BEP 12 multitracker). Tiers are announced to in parallel; inside
// a tier one tracker is used at a time, in shuffled order, and a tracker that answers moves to the front. Regular
// re-announces follow the tracker's `interval` and never come sooner than its `min interval`; failures back off
// exponentially with a log line naming the tracker and the reason. stop() sends `stopped` to every tracker that heard
// `started`, bounded by a deadline. All work runs on the caller's io_context; nothing here blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <asio.hpp>

#include "net/io/tracker_client.hpp"
#include "net/types.hpp"

namespace ph::engine {

struct AnnouncerOptions {
  std::chrono::milliseconds interval_floor{30'000};    // never re-announce more often, whatever a tracker says
  std::chrono::milliseconds backoff_base{15'000};      // first retry after a tier failed; doubles per failed round
  std::chrono::milliseconds backoff_max{30 * 60'000};
  std::int32_t numwant = 50;
  bool shuffle = true;      // BEP 12: shuffle each tier once, at construction
  std::uint64_t seed = 0;   // shuffle and key; 0 means random
  net::TrackerClientOptions client;
  std::function<void(const std::string&)> log;  // default: "[tracker] ..." lines on stderr
};

struct AnnounceStats {
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t left = 0;
};

struct TrackerStatus {
  std::string url;
  std::size_t tier = 0;
  std::size_t position = 0;  // order inside the tier (0 = tried first)
  std::string last_result;   // "not contacted", "announcing", "ok: N peers", "error: ..."
  unsigned failures = 0;     // consecutive
  std::optional<std::chrono::steady_clock::time_point> next_announce;  // for the tracker in use in its tier
  std::optional<std::int64_t> seeders;
  std::optional<std::int64_t> leechers;
  std::string warning;
};

class Announcer {
 public:
  using StatsFn = std::function<AnnounceStats()>;
  using PeersFn = std::function<void(std::vector<PeerAddress>)>;
  using Clock = std::chrono::steady_clock;

  Announcer(asio::io_context& io, std::vector<std::vector<std::string>> tiers, InfoHash info_hash, PeerId peer_id,
            std::uint16_t listen_port, StatsFn stats, PeersFn peers, AnnouncerOptions options = {});
  ~Announcer();  // silent: cancels everything, no callback runs afterwards (call stop() first to say goodbye)
  Announcer(const Announcer&) = delete;
  Announcer& operator=(const Announcer&) = delete;

  // Magnet `tr` parameters: each tracker is its own tier.
  static std::vector<std::vector<std::string>> tiers_from_list(const std::vector<std::string>& urls);

  void start();         // `started` to every tier
  void completed();     // `completed` to every tier that heard `started`, now
  void announce_now();  // the engine wants peers: announce as soon as each tracker's min interval allows
  // Sends `stopped` where `started` was heard; `done` runs (on the io_context) when all answered or at the deadline.
  void stop(std::chrono::milliseconds deadline, std::function<void()> done);

  std::vector<TrackerStatus> status() const;
  bool running() const { return running_; }

 private:
  struct Tracker {
    std::string url;
    unsigned failures = 0;
    bool started_acked = false;  // it answered our `started`
    std::string tracker_id;
    std::string last_result = "not contacted";
    std::string warning;
    std::optional<std::int64_t> seeders, leechers;
    Clock::duration min_interval{};
    std::optional<Clock::time_point> last_success;
  };
  struct Tier {
    explicit Tier(asio::io_context& io) : timer(io) {}
    std::vector<Tracker> trackers;  // current preference order
    std::size_t current = 0;        // the tracker being used / tried
    std::size_t tried = 0;          // failures in this round (a round ends when every tracker failed once)
    unsigned failed_rounds = 0;
    bool in_flight = false;
    tracker::Event in_flight_event = tracker::Event::none;
    net::TrackerClient::RequestId request = 0;
    bool completed_pending = false;
    std::optional<Clock::time_point> next;
    asio::steady_timer timer;
  };

  void announce_tier(std::size_t t);
  void on_reply(std::size_t t, tracker::Event event, Result<tracker::AnnounceResponse> r);
  void schedule(std::size_t t, Clock::time_point when);
  Clock::duration backoff(unsigned rounds);
  void finish_stop();
  void log(const std::string& line) const;

  asio::io_context& io_;
  InfoHash info_hash_;
  PeerId peer_id_;
  std::uint16_t port_;
  StatsFn stats_;
  PeersFn peers_;
  AnnouncerOptions options_;
  std::mt19937_64 rng_;
  std::uint32_t key_;
  net::TrackerClient client_;
  std::vector<std::unique_ptr<Tier>> tiers_;
  bool running_ = false;
  bool stopping_ = false;
  std::size_t stops_outstanding_ = 0;
  std::vector<net::TrackerClient::RequestId> stop_requests_;
  std::function<void()> stop_done_;
  asio::steady_timer stop_timer_;
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);  // timers check it: no callback after destruction
};

}  // namespace ph::engine
