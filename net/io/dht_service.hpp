// DhtService: the Asio glue around the sans-I/O dht::DhtNode. It owns one UDP socket and one timer on the caller's
// io_context, resolves the bootstrap host names, feeds datagrams and the steady clock to the node, and gives the
// engine a small API: get_peers (peers streamed as they arrive), announce, keep-announcing, add_node (peer-wire PORT
// message), and stats for /metrics. Everything runs on the io_context thread; no locks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "net/dht_node.hpp"
#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::net {

struct DhtServiceOptions {
  std::string bind_address = "0.0.0.0";  // "::" for a dual-stack socket
  std::uint16_t port = 6881;             // 0: any free port (see local_port())
  std::vector<std::string> bootstrap;    // "host:port" or "[v6]:port"; names are resolved asynchronously
  dht::NodeConfig node;                  // node.seed == 0: seeded from std::random_device
};

struct DhtServiceStats {
  dht::NodeStats node;
  std::uint64_t send_errors = 0;
  std::uint64_t bootstrap_resolved = 0;  // bootstrap addresses obtained from names
  bool running = false;
};

class DhtService {
 public:
  using PeersHandler = std::function<void(const std::vector<PeerAddress>&)>;
  using DoneHandler = std::function<void(const dht::LookupResult&)>;
  using PingHandler = std::function<void(std::optional<Id20>)>;
  using HopObserver = std::function<void(const dht::HopEvent&)>;

  DhtService(asio::io_context& io, DhtServiceOptions options);
  ~DhtService();  // stops; no handler runs afterwards
  DhtService(const DhtService&) = delete;
  DhtService& operator=(const DhtService&) = delete;

  // Opens and binds the socket and starts resolving the bootstrap names. Requests made before the names are
  // resolved wait for them, so the first lookup already has somewhere to start.
  Result<void> start();
  void stop();
  bool running() const;
  std::uint16_t local_port() const;
  const Id20& node_id() const;

  // Handlers run on the io_context thread. on_peers may run many times (each reply with new peers); on_done once.
  void get_peers(const InfoHash& info_hash, PeersHandler on_peers, DoneHandler on_done);
  void find_node(const Id20& target, DoneHandler on_done);
  // port 0: implied_port (peers reach us on the DHT's UDP port number).
  void announce(const InfoHash& info_hash, std::uint16_t port, DoneHandler on_done = {});
  // Announce now and every 15 minutes until stop_announcing (an active, non-private torrent).
  void start_announcing(const InfoHash& info_hash, std::uint16_t port);
  void stop_announcing(const InfoHash& info_hash);
  void add_node(const PeerAddress& address);  // learnt from the peer wire PORT message
  void ping(const PeerAddress& address, PingHandler on_reply);
  void set_hop_observer(HopObserver observer);

  // Good nodes as "ip:port", freshest first: save them (disk mode) and pass them as bootstrap on the next start.
  std::vector<std::string> known_nodes(std::size_t max = 64) const;
  DhtServiceStats stats() const;
  // Prometheus text lines (playhead_dht_*), ready to append to /metrics.
  std::string metrics_text() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Splits "host:port" / "[v6]:port"; nullopt when there is no valid port.
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text);

}  // namespace ph::net
