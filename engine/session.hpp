// Session: wires the parts together. It owns the memory budget (one Arena for every torrent), the hashing pool, the
// peer listen socket and the torrents, and routes incoming connections to the torrent their handshake names. It
// holds no torrent policy itself: each Torrent owns its state.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/config.hpp"
#include "engine/torrent.hpp"
#include "net/io/dht_service.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"
#include "storage/arena.hpp"
#include "storage/hasher.hpp"

namespace ph::engine {

struct SessionOptions {
  std::string listen_address = "0.0.0.0";  // peer wire listen address (tests use 127.0.0.1)
  unsigned hasher_workers = 0;             // 0 = cores - 1, at least 1
  std::uint32_t max_connections = 200;     // all torrents together
  TorrentOptions torrent;
};

struct AddedTorrent {
  Torrent* torrent = nullptr;
  bool created = false;  // false: it was already in the session
};

class Session {
 public:
  Session(asio::io_context& io, Config config, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Reserves the arena and opens the peer listen port (config.peer_port; 0 picks a free one).
  Result<void> start();
  // Stops every torrent (trackers hear `stopped`, bounded by deadline), closes the listen socket, then calls done.
  void shutdown(std::chrono::milliseconds deadline, std::function<void()> done);

  Result<AddedTorrent> add(Metainfo metainfo);
  Result<AddedTorrent> add_magnet(const Magnet& magnet);
  Result<AddedTorrent> add_torrent_bytes(std::string_view torrent_file);
  Result<AddedTorrent> add_magnet_uri(std::string_view uri);
  Torrent* find(const InfoHash& hash) const;
  std::vector<Torrent*> torrents() const;
  // Removes a torrent: its peers close, its memory is freed; disk mode with delete_files also deletes its data.
  Result<void> remove(const InfoHash& hash, bool delete_files);

  const Config& config() const { return config_; }
  std::uint16_t listen_port() const { return listen_port_; }
  const PeerId& peer_id() const { return peer_id_; }
  storage::Arena& arena() { return *arena_; }
  const storage::Arena& arena() const { return *arena_; }
  asio::io_context& io() { return io_; }
  net::DhtService* dht() { return dht_.get(); }


 private:
  void accept_next();
  TorrentContext context();
  std::uint32_t connection_count() const;

  asio::io_context& io_;
  Config config_;
  SessionOptions options_;
  PeerId peer_id_;
  std::unique_ptr<storage::Arena> arena_;
  std::unique_ptr<storage::Hasher> hasher_;
  std::unique_ptr<net::DhtService> dht_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t listen_port_ = 0;
  std::map<InfoHash, std::unique_ptr<Torrent>> torrents_;
  std::vector<std::unique_ptr<Torrent>> retiring_;  // removed torrents saying goodbye to their trackers
  bool stopping_ = false;
};

// A peer id in Azureus style: "-PH0100-" and 12 random bytes.
PeerId make_peer_id();

}  // namespace ph::engine
