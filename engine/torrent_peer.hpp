// Torrent::Peer: what a torrent knows of one connected peer. Private to the torrent_*.cpp files.
#pragma once

#include <chrono>
#include <deque>
#include <limits>
#include <set>
#include <vector>

#include "engine/torrent.hpp"

namespace ph::engine {

struct Torrent::Peer {
  std::shared_ptr<net::PeerConnection> conn;
  std::uint32_t slot = 0;
  PeerAddress address;  // where we reach it (outgoing) or where it came from (incoming)
  bool handshaken = false;
  bool am_choking = true;
  bool am_interested = false;
  bool peer_choking = true;
  bool peer_interested = false;
  bool seed = false;
  bool in_picker = false;
  bool upload_only = false;
  std::uint64_t connected_order = 0;
  PeerId id;
  wire::ExtensionHandshake ext;
  std::uint8_t ut_metadata = 0, ut_pex = 0, lt_donthave = 0;
  std::uint32_t reqq = 250;
  // Piece knowledge received before the metadata (magnets) is replayed into the picker once it is known.
  std::vector<std::uint8_t> bitfield;
  bool have_all = false;
  bool have_none = false;
  std::vector<PieceIndex> haves;
  struct InFlight {
    BlockRequest block;
    std::chrono::steady_clock::time_point sent;
  };
  std::vector<InFlight> requests;
  std::deque<BlockRequest> uploads;
  bool serving = false;
  PieceIndex prefetched_after = std::numeric_limits<PieceIndex>::max();  // upload piece the last prefetch ran for
  bool violated = false;  // closed for breaking the protocol: a strike against its address (see on_closed)
  std::uint32_t metadata_outstanding = 0;
  std::set<PeerAddress> pex_sent;
  std::chrono::steady_clock::time_point last_block{};
};

}  // namespace ph::engine
