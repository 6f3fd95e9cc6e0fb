// Torrent: the metadata exchange (BEP 9 ut_metadata, for magnet links) and peer exchange (BEP 11 ut_pex).
#include "engine/torrent_peer.hpp"

#include <algorithm>

#include "engine/log.hpp"

namespace ph::engine {

using Clock = std::chrono::steady_clock;

// ---- metadata (BEP 9) ----------------------------------------------------------------------------------------

void Torrent::request_metadata(Peer& p) {
  if (metainfo_ || p.ut_metadata == 0 || !p.ext.metadata_size) return;
  if (!metadata_.started()) {
    auto r = metadata_.reset(*p.ext.metadata_size);
    if (!r) {
      close_violator(p, "unusable metadata_size: " + r.error().message);
      return;
    }
  }
  if (metadata_.total_size() != *p.ext.metadata_size) return;  // disagrees with the peer we are assembling from
  // Ask this peer for every missing piece (metadata is small: a few pieces), at most 8 at a time.
  for (std::uint32_t i = 0; i < metadata_.piece_count() && p.metadata_outstanding < 8; ++i) {
    p.conn->send_extended(p.ut_metadata, wire::encode_metadata_request(i));
    ++p.metadata_outstanding;
  }
}

void Torrent::handle_metadata_message(Peer& p, std::string_view payload) {
  auto msg = wire::parse_metadata_message(payload);
  if (!msg) {
    close_violator(p, "bad ut_metadata message: " + msg.error().message);
    return;
  }
  switch (msg->type) {
    case wire::MetadataMsgType::request: {
      if (p.ut_metadata == 0) return;
      if (!metainfo_) {
        p.conn->send_extended(p.ut_metadata, wire::encode_metadata_reject(msg->piece));
        return;
      }
      const std::string& info = metainfo_->info_bytes;
      const std::uint64_t start = std::uint64_t{msg->piece} * wire::kMetadataPieceSize;
      if (start >= info.size()) {
        p.conn->send_extended(p.ut_metadata, wire::encode_metadata_reject(msg->piece));
        return;
      }
      const auto len = std::min<std::uint64_t>(wire::kMetadataPieceSize, info.size() - start);
      p.conn->send_extended(p.ut_metadata, wire::encode_metadata_data(msg->piece, info.size(),
                                                                      std::string_view(info).substr(start, len)));
      return;
    }
    case wire::MetadataMsgType::reject:
      if (p.metadata_outstanding > 0) --p.metadata_outstanding;
      return;
    case wire::MetadataMsgType::data: break;
  }
  if (p.metadata_outstanding > 0) --p.metadata_outstanding;
  if (metainfo_ || !metadata_.started()) return;
  auto added = metadata_.add(*msg);
  if (!added) {
    close_violator(p, "bad ut_metadata data: " + added.error().message);
    return;
  }
  if (!metadata_.complete()) return;
  auto info = metadata_.verify(info_hash_);
  if (!info) {
    ban(p, "metadata does not hash to the info-hash");
    return;
  }
  auto parsed = parse_info_dict(info.value());
  if (!parsed) {
    log_warn("torrent", info_hash_.hex() + ": metadata is not a usable info dictionary: " + parsed.error().message);
    ban(p, "unusable metadata");
    return;
  }
  Metainfo m = std::move(parsed.value());
  m.trackers = trackers_;
  metainfo_ = std::move(m);
  log_info("torrent", "Metadata received for " + metainfo_->name + " (" + std::to_string(metainfo_->files.size()) +
                          " files, " + std::to_string(metainfo_->total_length) + " bytes)");
  init_with_metadata();
  fill_all_requests();
}

void Torrent::handle_pex(Peer& p, std::string_view payload) {
  if (is_private()) return;
  auto msg = wire::parse_pex(payload);
  if (!msg) {
    close_violator(p, "bad ut_pex message: " + msg.error().message);
    return;
  }
  std::vector<PeerAddress> addresses;
  for (const auto& a : msg->added) addresses.push_back(a.address);
  add_peers(addresses, "pex");
}

void Torrent::send_pex() {
  if (is_private()) return;
  std::set<PeerAddress> connected;
  for (const auto& p : peers_) {
    if (!p || !p->handshaken) continue;
    PeerAddress a = p->address;
    if (!p->conn->is_outgoing()) {
      if (!p->ext.listen_port || *p->ext.listen_port == 0) continue;
      a.port = *p->ext.listen_port;
    }
    connected.insert(a);
  }
  for (auto& p : peers_) {
    if (!p || !p->handshaken || p->ut_pex == 0) continue;
    wire::PexMessage msg;
    for (const auto& a : connected) {
      if (msg.added.size() >= 50) break;
      if (a == p->address || p->pex_sent.count(a)) continue;
      msg.added.push_back({a, 0});
    }
    for (auto it = p->pex_sent.begin(); it != p->pex_sent.end();) {
      if (!connected.count(*it) && msg.dropped.size() < 50) {
        msg.dropped.push_back(*it);
        it = p->pex_sent.erase(it);
      } else {
        ++it;
      }
    }
    if (msg.added.empty() && msg.dropped.empty()) continue;
    for (const auto& a : msg.added) p->pex_sent.insert(a.address);
    p->conn->send_extended(p->ut_pex, wire::encode_pex(msg));
  }
}
}  // namespace ph::engine
