// DhtService implementation. The state lives in a shared Impl that every pending Asio handler holds, so handlers
// that complete after the service is destroyed find a stopped Impl instead of freed memory.
#include "net/io/dht_service.hpp"

#include <array>
#include <random>

namespace ph::net {

namespace {

using asio::ip::udp;

PeerAddress to_peer(const udp::endpoint& ep) {
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v4()) return PeerAddress::v4(a.to_v4().to_uint(), ep.port());
  PeerAddress p;
  p.v6 = true;
  auto bytes = a.to_v6().to_bytes();
  std::copy(bytes.begin(), bytes.end(), p.ip.begin());
  p.port = ep.port();
  return p;
}

udp::endpoint to_endpoint(const PeerAddress& p, bool socket_v6) {
  if (!p.v6) {
    asio::ip::address_v4 v4(asio::ip::address_v4::bytes_type{p.ip[0], p.ip[1], p.ip[2], p.ip[3]});
    if (socket_v6) return {asio::ip::make_address_v6(asio::ip::v4_mapped, v4), p.port};
    return {v4, p.port};
  }
  asio::ip::address_v6::bytes_type b{};
  std::copy(p.ip.begin(), p.ip.end(), b.begin());
  return {asio::ip::address_v6(b), p.port};
}

}  // namespace

std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return std::make_pair(std::string(host), static_cast<std::uint16_t>(value));
}

struct DhtService::Impl : std::enable_shared_from_this<DhtService::Impl> {
  Impl(asio::io_context& io, DhtServiceOptions opts)
      : io_(io), options_(std::move(opts)), socket_(io), timer_(io), resolver_(io) {
    if (options_.node.seed == 0) {
      std::random_device rd;
      options_.node.seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    node_.emplace(options_.node, dht::Clock::now());
  }

  asio::io_context& io_;
  DhtServiceOptions options_;
  udp::socket socket_;
  asio::steady_timer timer_;
  udp::resolver resolver_;
  std::optional<dht::DhtNode> node_;
  std::array<char, 65536> buffer_{};
  udp::endpoint sender_;
  bool v6_socket_ = false;
  bool running_ = false;
  bool ready_ = false;  // bootstrap names resolved (or none to resolve)
  std::size_t resolving_ = 0;
  std::vector<PeerAddress> resolved_;
  std::vector<std::function<void()>> waiting_;  // requests made before bootstrap resolution finished
  std::optional<dht::TimePoint> armed_;
  DhtServiceStats extra_;

  Result<void> start() {
    if (running_) return {};
    asio::error_code ec;
    auto addr = asio::ip::make_address(options_.bind_address, ec);
    if (ec) return make_error("dht: bad bind address '" + options_.bind_address + "': " + ec.message());
    v6_socket_ = addr.is_v6();
    udp::endpoint ep(addr, options_.port);
    socket_.open(ep.protocol(), ec);
    if (ec) return make_error("dht: cannot open UDP socket: " + ec.message());
    if (v6_socket_) socket_.set_option(asio::ip::v6_only(false), ec);  // dual-stack when the OS allows it
    socket_.bind(ep, ec);
    if (ec) {
      socket_.close();
      return make_error("dht: cannot bind UDP " + options_.bind_address + ":" + std::to_string(options_.port) + ": " +
                        ec.message());
    }
    // Sends never block the io thread: a full socket buffer drops the datagram, as the network might anyway.
    socket_.non_blocking(true, ec);
    running_ = true;
    receive_next();
    resolve_bootstrap();
    arm_timer();
    return {};
  }

  void stop() {
    if (!running_) return;
    running_ = false;
    asio::error_code ec;
    socket_.close(ec);
    timer_.cancel();
    resolver_.cancel();
    waiting_.clear();
  }

  void resolve_bootstrap() {
    std::vector<std::pair<std::string, std::uint16_t>> names;
    for (const auto& b : options_.bootstrap) {
      if (auto hp = split_host_port(b)) names.push_back(*hp);
    }
    if (names.empty()) {
      became_ready();
      return;
    }
    resolving_ = names.size();
    for (const auto& [host, port] : names) {
      resolver_.async_resolve(host, std::to_string(port), udp::resolver::numeric_service,
                              [self = shared_from_this()](const asio::error_code& ec, udp::resolver::results_type r) {
                                if (!self->running_) return;
                                if (!ec) {
                                  for (const auto& e : r) {
                                    PeerAddress p = to_peer(e.endpoint());
                                    // Only addresses this socket can reach are useful.
                                    if (p.v6 && !self->v6_socket_) continue;
                                    if (std::find(self->resolved_.begin(), self->resolved_.end(), p) ==
                                        self->resolved_.end()) {
                                      self->resolved_.push_back(p);
                                    }
                                  }
                                }
                                if (--self->resolving_ == 0) self->became_ready();
                              });
    }
  }

  void became_ready() {
    ready_ = true;
    extra_.bootstrap_resolved = resolved_.size();
    if (!resolved_.empty()) node_->bootstrap(resolved_, dht::Clock::now());
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& f : waiting) f();
    flush();
  }

  // Runs `f` now if bootstrap is resolved, else once it is.
  void when_ready(std::function<void()> f) {
    if (!running_) return;
    if (ready_) {
      f();
      flush();
    } else {
      waiting_.push_back(std::move(f));
    }
  }

  void receive_next() {
    socket_.async_receive_from(asio::buffer(buffer_), sender_,
                               [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                                 if (!self->running_) return;
                                 if (!ec) {
                                   self->node_->receive(std::string_view(self->buffer_.data(), n),
                                                        to_peer(self->sender_), dht::Clock::now());
                                   self->flush();
                                 }
                                 // ICMP errors (connection refused) surface here on some systems: keep going.
                                 if (ec != asio::error::operation_aborted) self->receive_next();
                               });
  }

  void flush() {
    if (!running_) return;
    for (auto& d : node_->take_outgoing()) {
      if (d.to.v6 && !v6_socket_) {
        ++extra_.send_errors;
        continue;
      }
      asio::error_code ec;
      socket_.send_to(asio::buffer(d.bytes), to_endpoint(d.to, v6_socket_), 0, ec);
      if (ec) ++extra_.send_errors;
    }
    arm_timer();
  }

  void arm_timer() {
    if (!running_) return;
    const dht::TimePoint deadline = node_->next_deadline();
    if (armed_ && *armed_ == deadline) return;
    armed_ = deadline;
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec == asio::error::operation_aborted || !self->running_) return;
      self->armed_.reset();
      self->node_->tick(dht::Clock::now());
      self->flush();
    });
  }
};

DhtService::DhtService(asio::io_context& io, DhtServiceOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

DhtService::~DhtService() { stop(); }

Result<void> DhtService::start() { return impl_->start(); }
void DhtService::stop() { impl_->stop(); }
bool DhtService::running() const { return impl_->running_; }

std::uint16_t DhtService::local_port() const {
  asio::error_code ec;
  auto ep = impl_->socket_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

const Id20& DhtService::node_id() const { return impl_->node_->id(); }

void DhtService::get_peers(const InfoHash& info_hash, PeersHandler on_peers, DoneHandler on_done) {
  impl_->when_ready([impl = impl_.get(), info_hash, on_peers = std::move(on_peers), on_done = std::move(on_done)] {
    impl->node_->get_peers(info_hash, on_peers, on_done, dht::Clock::now());
  });
}

void DhtService::find_node(const Id20& target, DoneHandler on_done) {
  impl_->when_ready([impl = impl_.get(), target, on_done = std::move(on_done)] {
    impl->node_->find_node(target, on_done, dht::Clock::now());
  });
}

void DhtService::announce(const InfoHash& info_hash, std::uint16_t port, DoneHandler on_done) {
  impl_->when_ready([impl = impl_.get(), info_hash, port, on_done = std::move(on_done)] {
    impl->node_->announce(info_hash, port, {}, on_done, dht::Clock::now());
  });
}

void DhtService::start_announcing(const InfoHash& info_hash, std::uint16_t port) {
  impl_->when_ready([impl = impl_.get(), info_hash, port] {
    impl->node_->start_announcing(info_hash, port, dht::Clock::now());
  });
}

void DhtService::stop_announcing(const InfoHash& info_hash) { impl_->node_->stop_announcing(info_hash); }

void DhtService::add_node(const PeerAddress& address) {
  if (!impl_->running_ || address.port == 0) return;
  impl_->node_->add_node(address, dht::Clock::now());
  impl_->flush();
}

void DhtService::ping(const PeerAddress& address, PingHandler on_reply) {
  impl_->when_ready([impl = impl_.get(), address, on_reply = std::move(on_reply)] {
    impl->node_->ping(address, dht::Clock::now(), on_reply);
  });
}

void DhtService::set_hop_observer(HopObserver observer) { impl_->node_->set_hop_observer(std::move(observer)); }

std::vector<std::string> DhtService::known_nodes(std::size_t max) const {
  std::vector<std::string> out;
  for (const auto& n : impl_->node_->known_nodes(dht::Clock::now(), max)) out.push_back(n.address.to_string());
  return out;
}

DhtServiceStats DhtService::stats() const {
  DhtServiceStats s = impl_->extra_;
  s.node = impl_->node_->stats(dht::Clock::now());
  s.running = impl_->running_;
  return s;
}

std::string DhtService::metrics_text() const {
  const DhtServiceStats s = stats();
  std::string out;
  auto line = [&](const char* name, const char* type, const char* help, std::uint64_t value) {
    out += "# HELP playhead_dht_";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE playhead_dht_";
    out += name;
    out += ' ';
    out += type;
    out += "\nplayhead_dht_";
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  const auto& n = s.node;
  line("packets_in_total", "counter", "UDP datagrams received", n.packets_in);
  line("packets_out_total", "counter", "UDP datagrams sent", n.packets_out);
  line("bytes_in_total", "counter", "UDP bytes received", n.bytes_in);
  line("bytes_out_total", "counter", "UDP bytes sent", n.bytes_out);
  line("queries_in_total", "counter", "KRPC queries served", n.queries_in);
  line("queries_out_total", "counter", "KRPC queries sent", n.queries_out);
  line("timeouts_total", "counter", "queries that got no answer", n.timeouts);
  line("malformed_total", "counter", "datagrams that were not valid KRPC", n.malformed);
  line("rate_limited_total", "counter", "queries dropped by the per-IP rate limit", n.rate_limited);
  line("bad_tokens_total", "counter", "announce_peer refused for a bad token", n.bad_tokens);
  line("send_errors_total", "counter", "datagrams the socket refused", s.send_errors);
  line("routing_nodes", "gauge", "nodes in the routing table", n.routing_nodes);
  line("routing_good_nodes", "gauge", "good nodes in the routing table", n.routing_good);
  line("routing_buckets", "gauge", "routing table buckets", n.routing_buckets);
  line("stored_infohashes", "gauge", "info-hashes with peers announced to us", n.stored_hashes);
  line("stored_peers", "gauge", "peers announced to us", n.stored_peers);
  line("lookups", "gauge", "lookups in progress", n.active_lookups);
  return out;
}

}  // namespace ph::net
