// One asynchronous announce/scrape interface over HTTP(S) and UDP trackers, IPv4 and IPv6. HTTP goes through
// HttpClient plus the pure tracker_http codec; UDP runs the sans-I/O udp::Machine on one connected socket per
// tracker address (so the connection id is shared by every torrent announcing there). Results are values: a
// tracker's `failure reason`, a timeout or a malformed reply all arrive as an Error with a clear message.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>

#include "net/io/http_client.hpp"
#include "net/result.hpp"
#include "net/tracker_http.hpp"
#include "net/udp_tracker.hpp"

namespace ph::net {

struct TrackerClientOptions {
  HttpClientOptions http;            // timeout, redirects, size caps for HTTP(S) trackers
  tracker::udp::MachineConfig udp;   // retransmission base and count, datagram cap for UDP trackers
  tracker::ResponseLimits limits;
};

class TrackerClient {
 public:
  using AnnounceHandler = std::function<void(Result<tracker::AnnounceResponse>)>;
  using ScrapeHandler = std::function<void(Result<tracker::ScrapeResponse>)>;
  using RequestId = std::uint64_t;

  explicit TrackerClient(asio::io_context& io, TrackerClientOptions options = {});
  ~TrackerClient();  // cancels everything still running; no handler runs afterwards
  TrackerClient(const TrackerClient&) = delete;
  TrackerClient& operator=(const TrackerClient&) = delete;

  // The handler runs exactly once on the io_context, never inside this call, unless cancelled first.
  RequestId announce(const std::string& url, const tracker::AnnounceRequest& req, AnnounceHandler handler);
  RequestId scrape(const std::string& url, std::vector<InfoHash> hashes, ScrapeHandler handler);
  void cancel(RequestId id);

  const TrackerClientOptions& options() const { return options_; }

 private:
  class UdpTracker;
  struct Pending {
    bool udp = false;
    HttpClient::RequestId http_id = 0;
    std::string udp_key;
    std::uint64_t udp_id = 0;
  };

  std::shared_ptr<UdpTracker> udp_tracker_for(const tracker::Url& url);
  void fail_soon(std::function<void()> call);

  asio::io_context& io_;
  TrackerClientOptions options_;
  HttpClient http_;
  std::map<std::string, std::shared_ptr<UdpTracker>> udp_;
  std::map<RequestId, Pending> pending_;
  RequestId next_id_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ph::net
