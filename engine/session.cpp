#include "engine/session.hpp"

#include <filesystem>
#include <random>

#include "engine/log.hpp"

namespace ph::engine {

PeerId make_peer_id() {
  PeerId id;
  const char prefix[] = "-PH0100-";
  std::random_device rd;
  for (std::size_t i = 0; i < 20; ++i) {
    id.bytes[i] = i < 8 ? static_cast<std::uint8_t>(prefix[i]) : static_cast<std::uint8_t>(rd());
  }
  return id;
}

Session::Session(asio::io_context& io, Config config, SessionOptions options)
    : io_(io), config_(std::move(config)), options_(std::move(options)), peer_id_(make_peer_id()), acceptor_(io) {}

Session::~Session() {
  torrents_.clear();
  retiring_.clear();
  dht_.reset();
  hasher_.reset();  // joins the workers before the arena goes
}

Result<void> Session::start() {
  auto arena = storage::Arena::create(config_.memory_limit);
  if (!arena) return make_error("cannot reserve the memory budget: " + arena.error().message);
  arena_ = std::move(arena.value());
  hasher_ = std::make_unique<storage::Hasher>(io_, options_.hasher_workers);

  asio::error_code ec;
  const auto address = asio::ip::make_address(options_.listen_address, ec);
  if (ec) return make_error("bad peer listen address " + options_.listen_address);
  const asio::ip::tcp::endpoint ep(address, config_.peer_port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error("cannot listen for peers on " + options_.listen_address + ":" +
                      std::to_string(config_.peer_port) + ": " + ec.message());
  }
  listen_port_ = acceptor_.local_endpoint().port();
  log_info("session", "listening for peers on " + options_.listen_address + ":" + std::to_string(listen_port_));
  if (config_.dht) {
    net::DhtServiceOptions dopts;
    dopts.bind_address = options_.listen_address;
    dopts.port = listen_port_;  // the DHT shares the peer port number, over UDP
    dopts.bootstrap = config_.dht_bootstrap;
    dht_ = std::make_unique<net::DhtService>(io_, dopts);
    if (auto ok = dht_->start(); !ok) {
      log_warn("session", "DHT disabled: " + ok.error().message);
      dht_.reset();
    } else {
      log_info("session", "DHT node on UDP port " + std::to_string(dht_->local_port()));
    }
  }
  accept_next();
  return {};
}

void Session::accept_next() {
  acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted && !stopping_) accept_next();
      return;
    }
    if (connection_count() >= options_.max_connections) {
      socket.close();
      accept_next();
      return;
    }
    net::PeerConnectionConfig cfg;
    cfg.our_peer_id = peer_id_;
    cfg.reserved = wire::Reserved::ours(config_.dht);
    auto holder = std::make_shared<std::weak_ptr<net::PeerConnection>>();
    auto conn = net::PeerConnection::incoming(
        std::move(socket), cfg, [this, holder](const InfoHash& hash) -> net::PeerConnectionHandler* {
          Torrent* t = find(hash);
          auto c = holder->lock();
          if (!t || !c || t->state() == TorrentState::stopped) return nullptr;
          t->adopt_incoming(c);
          return t;
        });
    *holder = conn;
    conn->start();
    accept_next();
  });
}

std::uint32_t Session::connection_count() const {
  std::uint32_t n = 0;
  for (const auto& [hash, t] : torrents_) n += t->peer_count();
  return n;
}

TorrentContext Session::context() {
  TorrentContext ctx{io_, *arena_, *hasher_, config_, peer_id_, listen_port_, {}, {}, {}, {}, {}};
  ctx.connection.our_peer_id = peer_id_;
  ctx.connection.reserved = wire::Reserved::ours(config_.dht);
  ctx.may_open_connection = [this] { return connection_count() < options_.max_connections; };
  if (dht_) {
    ctx.dht_node_seen = [this](const PeerAddress& a) { dht_->add_node(a); };
    ctx.dht_get_peers = [this](const InfoHash& hash, std::function<void(std::vector<PeerAddress>)> on_peers) {
      dht_->get_peers(hash, [on_peers](const std::vector<PeerAddress>& peers) { on_peers(peers); },
                      [](const auto&) {});
    };
    ctx.dht_announce = [this](const InfoHash& hash, bool announce) {
      if (announce) dht_->start_announcing(hash, listen_port_);
      else dht_->stop_announcing(hash);
    };
  }
  return ctx;
}

Result<AddedTorrent> Session::add(Metainfo metainfo) {
  if (!arena_) return make_error("session not started");
  if (Torrent* t = find(metainfo.info_hash)) return AddedTorrent{t, false};
  const InfoHash hash = metainfo.info_hash;
  auto t = std::make_unique<Torrent>(context(), std::move(metainfo), options_.torrent);
  Torrent* raw = t.get();
  torrents_.emplace(hash, std::move(t));
  log_info("session", "added " + raw->name() + " (" + hash.hex() + ")");
  raw->start();
  return AddedTorrent{raw, true};
}

Result<AddedTorrent> Session::add_magnet(const Magnet& magnet) {
  if (!arena_) return make_error("session not started");
  if (Torrent* t = find(magnet.info_hash)) {
    t->add_peers(magnet.peers, "magnet");
    return AddedTorrent{t, false};
  }
  std::vector<std::vector<std::string>> tiers;
  for (const auto& tr : magnet.trackers) tiers.push_back({tr});
  auto t = std::make_unique<Torrent>(context(), magnet.info_hash, magnet.display_name, std::move(tiers),
                                     options_.torrent);
  Torrent* raw = t.get();
  torrents_.emplace(magnet.info_hash, std::move(t));
  log_info("session", "added magnet " + magnet.info_hash.hex() +
                          (magnet.display_name.empty() ? "" : " (" + magnet.display_name + ")"));
  raw->start();
  raw->add_peers(magnet.peers, "magnet");
  return AddedTorrent{raw, true};
}

Result<AddedTorrent> Session::add_torrent_bytes(std::string_view torrent_file) {
  auto m = parse_metainfo(torrent_file);
  if (!m) return m.error();
  return add(std::move(m.value()));
}

Result<AddedTorrent> Session::add_magnet_uri(std::string_view uri) {
  auto m = parse_magnet(uri);
  if (!m) return m.error();
  return add_magnet(m.value());
}

Torrent* Session::find(const InfoHash& hash) const {
  auto it = torrents_.find(hash);
  return it == torrents_.end() ? nullptr : it->second.get();
}

std::vector<Torrent*> Session::torrents() const {
  std::vector<Torrent*> out;
  for (const auto& [hash, t] : torrents_) out.push_back(t.get());
  return out;
}

Result<void> Session::remove(const InfoHash& hash, bool delete_files) {
  auto it = torrents_.find(hash);
  if (it == torrents_.end()) return make_error("no such torrent");
  std::unique_ptr<Torrent> t = std::move(it->second);
  torrents_.erase(it);
  std::vector<std::filesystem::path> to_delete;
  if (delete_files && config_.storage_mode == StorageMode::disk && t->metainfo()) {
    const Metainfo& m = *t->metainfo();
    // Only the torrent's own top-level entry under the download folder (its paths were sanitized on parse).
    to_delete.push_back(std::filesystem::path(config_.download_dir) / (m.multi_file ? m.name : m.files[0].path_string()));
  }
  log_info("session", "removed " + t->name());
  Torrent* raw = t.get();
  retiring_.push_back(std::move(t));
  raw->stop(std::chrono::seconds(3), [this, raw, to_delete] {
    for (const auto& p : to_delete) {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
    for (auto rit = retiring_.begin(); rit != retiring_.end(); ++rit) {
      if (rit->get() == raw) {
        // Destroy outside the callback's own stack frame (the announcer is calling us).
        auto dying = std::make_shared<std::unique_ptr<Torrent>>(std::move(*rit));
        retiring_.erase(rit);
        asio::post(io_, [dying] {});
        break;
      }
    }
  });
  return {};
}

void Session::shutdown(std::chrono::milliseconds deadline, std::function<void()> done) {
  stopping_ = true;
  asio::error_code ec;
  acceptor_.close(ec);
  if (dht_) dht_->stop();
  auto remaining = std::make_shared<std::size_t>(torrents_.size());
  if (*remaining == 0) {
    asio::post(io_, std::move(done));
    return;
  }
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  for (auto& [hash, t] : torrents_) {
    t->stop(deadline, [remaining, shared_done] {
      if (--*remaining == 0) (*shared_done)();
    });
  }
}

}  // namespace ph::engine
