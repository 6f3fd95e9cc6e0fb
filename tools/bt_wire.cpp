// bt-wire: a peer wire protocol microscope. Connects to one peer, handshakes, and prints every message in both
// directions with a timestamp and its decoded fields; optionally fetches the info dictionary over BEP 9 (verified
// against the info-hash) or one block of a piece. Built on net::PeerConnection and the pure codecs, like the engine.
#include <sys/stat.h>

#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "net/bencode.hpp"
#include "net/extension_messages.hpp"
#include "net/io/peer_connection.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"
#include "net/sha1.hpp"

namespace {

using json = nlohmann::json;
using ph::wire::MessageKind;

constexpr std::uint64_t kMaxTorrentFile = 64ull << 20;
constexpr std::uint32_t kMetadataPipeline = 8;  // ut_metadata requests kept in flight

const char* kHelp =
    "usage: bt-wire [options] HOST:PORT INFOHASH|FILE.torrent|MAGNET\n"
    "\n"
    "Connects to one BitTorrent peer, handshakes, and prints every message in both directions\n"
    "('<-' received, '->' sent) with a timestamp and its decoded fields.\n"
    "\n"
    "options:\n"
    "  --metadata          fetch the info dictionary over BEP 9 ut_metadata and verify its SHA-1\n"
    "  -o FILE             with --metadata: save it as a .torrent file\n"
    "  --request P:O:L     fetch one block: piece P, byte offset O within the piece, length L\n"
    "  --block-out FILE    with --request: write the block's bytes to FILE\n"
    "  --json              one JSON object per line instead of text\n"
    "  --watch SECONDS     without --metadata/--request: how long to watch the conversation (default 10)\n"
    "  --timeout SECONDS   give up after this long (default 30)\n"
    "  --quiet-pieces      do not print received piece messages one by one\n"
    "  -h, --help          this text\n"
    "\n"
    "What the messages mean (BEP 3 unless noted):\n"
    "  handshake       68 bytes: protocol name, 8 reserved bytes (bit 0x10 of byte 5 = extension protocol,\n"
    "                  BEP 10; 0x04 of byte 7 = fast extension, BEP 6; 0x01 of byte 7 = DHT, BEP 5),\n"
    "                  the torrent's info-hash and the sender's 20-byte peer id (often names the client)\n"
    "  keep_alive      a zero-length message: 'still here' (sent when silent for ~2 minutes)\n"
    "  choke/unchoke   the sender will not / will answer our requests\n"
    "  interested      the sender wants pieces we have; not_interested: it does not (any more)\n"
    "  have            the sender now has piece P (verified)\n"
    "  bitfield        one bit per piece the sender has, sent right after the handshake\n"
    "  request         please send LEN bytes at OFFSET of piece P (blocks are 16 KiB)\n"
    "  piece           the block itself: piece P, OFFSET, then the data\n"
    "  cancel          forget an earlier request (it arrived from someone else)\n"
    "  port            the sender's DHT port (BEP 5)\n"
    "  suggest         BEP 6: 'you might want piece P' (it is cheap for me to send)\n"
    "  have_all        BEP 6: the sender has every piece (a seed); have_none: it has nothing\n"
    "  reject          BEP 6: your request for P/OFFSET/LEN will not be served\n"
    "  allowed_fast    BEP 6: you may request piece P even while choked\n"
    "  extended        BEP 10: id 0 is the extension handshake, a dictionary: m (extension name -> the id\n"
    "                  to use when sending it to this peer), v (client), p (listen port), reqq (how many\n"
    "                  requests it queues), metadata_size (BEP 9), yourip (our address as it sees it),\n"
    "                  upload_only (BEP 21); other ids carry the named extension:\n"
    "    ut_metadata   BEP 9: request/data/reject 16 KiB pieces of the info dictionary (magnet links)\n"
    "    ut_pex        BEP 11: peers the sender knows (added, with flags) and lost (dropped)\n"
    "    lt_donthave   BEP 54: the sender no longer has piece P\n"
    "\n"
    "exit status: 0 when every requested task succeeded (or the watch ended), 1 on failure, 2 on bad usage.\n";

struct Options {
  std::string peer;
  std::string target;
  bool metadata = false;
  std::string torrent_out;
  std::optional<std::array<std::uint32_t, 3>> request;
  std::string block_out;
  bool json = false;
  bool quiet_pieces = false;
  double watch = 10;
  double timeout = 30;
};

ph::Result<std::string> read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ph::make_error(path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return ph::make_error(path + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxTorrentFile) return ph::make_error(path + ": file too large");
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) return ph::make_error(path + ": read error");
  return data;
}

bool write_file(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return static_cast<bool>(out);
}

std::string hex(std::string_view s) {
  static constexpr char d[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// Peer ids often start with a client tag ("-lt2080-"): show printable bytes, '.' for the rest.
std::string peer_id_text(const ph::PeerId& id) {
  std::string out;
  for (auto b : id.bytes) out.push_back(b >= 0x20 && b < 0x7f ? static_cast<char>(b) : '.');
  return out;
}

json to_json(ph::bencode::Node n) {
  if (n.is_int()) return n.as_int();
  if (n.is_string()) {
    auto s = n.as_string();
    return printable(s) ? json(std::string(s)) : json("hex:" + hex(s));
  }
  if (n.is_list()) {
    json a = json::array();
    for (auto v : n.list()) a.push_back(to_json(v));
    return a;
  }
  json o = json::object();
  for (auto [k, v] : n.dict()) o[printable(k) ? std::string(k) : "hex:" + hex(k)] = to_json(v);
  return o;
}

std::optional<std::array<std::uint32_t, 3>> parse_request(std::string_view s) {
  std::array<std::uint32_t, 3> v{};
  std::size_t part = 0;
  std::uint64_t cur = 0;
  bool digits = false;
  for (char c : s) {
    if (c == ':') {
      if (!digits || part >= 2) return std::nullopt;
      v[part++] = static_cast<std::uint32_t>(cur);
      cur = 0;
      digits = false;
    } else if (c >= '0' && c <= '9') {
      cur = cur * 10 + static_cast<std::uint64_t>(c - '0');
      if (cur > 0xFFFFFFFFull) return std::nullopt;
      digits = true;
    } else {
      return std::nullopt;
    }
  }
  if (!digits || part != 2) return std::nullopt;
  v[2] = static_cast<std::uint32_t>(cur);
  return v;
}

class WireTool : public ph::net::PeerConnectionHandler {
 public:
  WireTool(asio::io_context& io, Options opt) : io_(io), opt_(std::move(opt)), deadline_(io), watch_timer_(io) {}

  int run(const asio::ip::tcp::endpoint& ep, const ph::InfoHash& ih, std::optional<ph::Metainfo> meta,
          std::optional<ph::Magnet> magnet) {
    info_hash_ = ih;
    meta_ = std::move(meta);
    magnet_ = std::move(magnet);
    ph::net::PeerConnectionConfig cfg;
    our_peer_id_ = make_peer_id();
    cfg.our_peer_id = our_peer_id_;
    cfg.limits.max_block = 128 * 1024;
    conn_ = ph::net::PeerConnection::outgoing(io_, ep, ih, cfg, this);
    if (meta_) conn_->set_piece_count(meta_->piece_count());
    note("connecting", {{"peer", opt_.peer}, {"info_hash", ih.hex()}},
         "connecting to " + opt_.peer + " for " + ih.hex());
    conn_->start();
    deadline_.expires_after(std::chrono::milliseconds(static_cast<long>(opt_.timeout * 1000)));
    deadline_.async_wait([this](std::error_code ec) {
      if (!ec) fail("timed out after " + std::to_string(static_cast<int>(opt_.timeout)) + " s");
    });
    io_.run();
    return exit_code_;
  }

  void on_connected(ph::net::PeerConnection&) override {
    print_handshake("out", ph::wire::Handshake{ph::wire::Reserved::ours(), info_hash_, our_peer_id_});
  }

  void on_handshake(ph::net::PeerConnection& c, const ph::wire::Handshake& h) override {
    print_handshake("in", h);
    if (h.reserved.extension_protocol()) {
      ph::wire::ExtensionHandshake eh;
      eh.m[std::string(ph::wire::kUtMetadata)] = ph::wire::kOurUtMetadataId;
      eh.m[std::string(ph::wire::kUtPex)] = ph::wire::kOurUtPexId;
      eh.m[std::string(ph::wire::kLtDonthave)] = ph::wire::kOurLtDonthaveId;
      eh.client = "Playhead bt-wire 0.1";
      eh.reqq = 250;
      std::string payload = ph::wire::encode_extension_handshake(eh);
      c.send_extended(0, payload);
      print_extended("out", 0, payload);
    } else if (opt_.metadata) {
      fail("the peer does not support the extension protocol, so it cannot send metadata");
      return;
    }
    // BEP 6: with the fast extension on both sides, one of bitfield/have_all/have_none must follow the handshake.
    if (h.reserved.fast()) {
      c.send_have_none();
      print_simple("out", MessageKind::have_none);
    }
    if (!opt_.metadata && !opt_.request) {
      watch_timer_.expires_after(std::chrono::milliseconds(static_cast<long>(opt_.watch * 1000)));
      watch_timer_.async_wait([this](std::error_code ec) {
        if (!ec) finish(0, "watch over");
      });
    }
    maybe_start_request();
  }

  void on_message(ph::net::PeerConnection& c, const ph::wire::Message& m) override {
    switch (m.kind) {
      case MessageKind::extended: handle_extended(c, m); return;
      case MessageKind::piece: handle_piece(m); return;
      default: break;
    }
    print_message("in", m);
    if (m.kind == MessageKind::unchoke) {
      peer_choking_ = false;
      maybe_start_request();
    } else if (m.kind == MessageKind::choke) {
      peer_choking_ = true;
      // Without the fast extension a choke silently drops our outstanding requests: ask again after unchoke.
      if (!c.remote_supports_fast()) request_sent_ = false;
    } else if (m.kind == MessageKind::allowed_fast && opt_.request && m.piece == (*opt_.request)[0]) {
      allowed_fast_ = true;
      maybe_start_request();
    } else if (m.kind == MessageKind::reject && opt_.request && request_sent_ && m.piece == (*opt_.request)[0] &&
               m.offset == (*opt_.request)[1]) {
      fail("the peer rejected our request");
    }
  }

  void on_closed(ph::net::PeerConnection&, const std::string& reason) override {
    note("closed", {{"reason", reason}}, "connection closed: " + reason);
    if (!done_) finish(1, "connection closed before the tasks finished: " + reason);
  }

 private:
  static ph::PeerId make_peer_id() {
    std::string id = "-PH0001-";
    std::random_device rd;
    while (id.size() < 20) id.push_back(static_cast<char>('0' + rd() % 10));
    return ph::Id20::from_bytes(id);
  }

  static std::string timestamp() {
    auto now = std::chrono::system_clock::now();
    auto t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
  }

  static double epoch_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  void emit(const char* dir, json j, const std::string& text) {
    if (opt_.json) {
      json out = {{"time", epoch_seconds()}, {"dir", dir}};
      out.update(j);
      std::puts(out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    } else {
      const char* arrow = std::strcmp(dir, "in") == 0 ? "<-" : std::strcmp(dir, "out") == 0 ? "->" : "--";
      std::printf("%s %s %s\n", timestamp().c_str(), arrow, text.c_str());
    }
    std::fflush(stdout);
  }

  void note(const char* event, json j, const std::string& text) {
    j["type"] = event;
    emit("local", std::move(j), text);
  }

  void print_handshake(const char* dir, const ph::wire::Handshake& h) {
    json j = {{"type", "handshake"},
              {"info_hash", h.info_hash.hex()},
              {"peer_id", h.peer_id.hex()},
              {"peer_id_text", peer_id_text(h.peer_id)},
              {"reserved", hex(std::string_view(reinterpret_cast<const char*>(h.reserved.bytes.data()), 8))},
              {"extension_protocol", h.reserved.extension_protocol()},
              {"fast", h.reserved.fast()},
              {"dht", h.reserved.dht()}};
    std::string flags;
    if (h.reserved.extension_protocol()) flags += " extensions";
    if (h.reserved.fast()) flags += " fast";
    if (h.reserved.dht()) flags += " dht";
    emit(dir, j, "handshake info_hash=" + h.info_hash.hex() + " peer_id=" + peer_id_text(h.peer_id) +
                     " supports:" + (flags.empty() ? " (nothing optional)" : flags));
  }

  void print_simple(const char* dir, MessageKind k) { emit(dir, {{"type", ph::wire::kind_name(k)}}, ph::wire::kind_name(k)); }

  void print_message(const char* dir, const ph::wire::Message& m) {
    const std::string name = ph::wire::kind_name(m.kind);
    json j = {{"type", name}};
    std::string text = name;
    switch (m.kind) {
      case MessageKind::have:
      case MessageKind::suggest:
      case MessageKind::allowed_fast:
        j["piece"] = m.piece;
        text += " piece=" + std::to_string(m.piece);
        break;
      case MessageKind::request:
      case MessageKind::cancel:
      case MessageKind::reject:
        j["piece"] = m.piece;
        j["offset"] = m.offset;
        j["length"] = m.length;
        text += " piece=" + std::to_string(m.piece) + " offset=" + std::to_string(m.offset) +
                " length=" + std::to_string(m.length);
        break;
      case MessageKind::port:
        j["port"] = m.port;
        text += " dht_port=" + std::to_string(m.port);
        break;
      case MessageKind::bitfield: {
        std::size_t set = 0;
        for (auto b : m.payload) set += static_cast<std::size_t>(__builtin_popcount(std::to_integer<unsigned>(b)));
        j["bytes"] = m.payload.size();
        j["pieces_set"] = set;
        j["hex"] = hex(m.payload_view().substr(0, 64));
        text += " " + std::to_string(m.payload.size()) + " bytes, " + std::to_string(set) + " pieces set";
        break;
      }
      default:
        break;
    }
    emit(dir, j, text);
  }

  void print_extended(const char* dir, std::uint8_t id, std::string_view payload) {
    json j = {{"type", "extended"}, {"extended_id", id}, {"length", payload.size()}};
    std::string text = "extended id=" + std::to_string(id);
    // Ids in messages we receive are ours (from our m); ids we send are the peer's.
    std::string name;
    if (id == 0) {
      name = "handshake";
    } else if (std::strcmp(dir, "in") == 0) {
      name = id == ph::wire::kOurUtMetadataId ? "ut_metadata"
             : id == ph::wire::kOurUtPexId    ? "ut_pex"
             : id == ph::wire::kOurLtDonthaveId ? "lt_donthave"
                                                : "unknown";
    } else if (remote_ext_) {
      for (const auto& [n, v] : remote_ext_->m) {
        if (v == id) name = n;
      }
    }
    j["extension"] = name;
    text += " (" + name + ")";
    if (name == "handshake" || name == "ut_pex" || name == "ut_metadata") {
      std::size_t used = 0;
      auto doc = ph::bencode::decode_prefix(payload, &used);
      if (doc) {
        j["dict"] = to_json(doc->root());
        text += " " + ph::bencode::to_debug_string(doc->root(), 64);
        if (used < payload.size()) {
          j["trailing_bytes"] = payload.size() - used;
          text += " + " + std::to_string(payload.size() - used) + " bytes of data";
        }
      } else {
        j["error"] = doc.error().message;
        text += " undecodable: " + doc.error().message;
      }
    }
    if (name == "ut_pex") {
      if (auto pex = ph::wire::parse_pex(payload)) {
        json added = json::array(), dropped = json::array();
        for (const auto& p : pex->added) added.push_back({{"address", p.address.to_string()}, {"flags", p.flags}});
        for (const auto& a : pex->dropped) dropped.push_back(a.to_string());
        j["added"] = added;
        j["dropped"] = dropped;
      }
    } else if (name == "lt_donthave") {
      if (auto p = ph::wire::parse_donthave(payload)) {
        j["piece"] = *p;
        text += " piece=" + std::to_string(*p);
      }
    }
    emit(dir, j, text);
  }

  void handle_extended(ph::net::PeerConnection& c, const ph::wire::Message& m) {
    const std::string_view payload = m.payload_view();
    print_extended("in", m.extended_id, payload);
    if (m.extended_id == 0) {
      auto eh = ph::wire::parse_extension_handshake(payload);
      if (!eh) {
        fail("bad extension handshake: " + eh.error().message);
        return;
      }
      remote_ext_ = std::move(*eh);
      if (opt_.metadata) start_metadata(c);
    } else if (m.extended_id == ph::wire::kOurUtMetadataId) {
      auto msg = ph::wire::parse_metadata_message(payload);
      if (!msg) {
        fail("bad ut_metadata message: " + msg.error().message);
        return;
      }
      if (msg->type == ph::wire::MetadataMsgType::request) {
        // We serve nothing: say so (BEP 9 reject) rather than leave the peer waiting.
        const std::uint8_t id = remote_ext_ ? remote_ext_->id_of(ph::wire::kUtMetadata) : 0;
        if (id != 0) {
          std::string rej = ph::wire::encode_metadata_reject(msg->piece);
          c.send_extended(id, rej);
          print_extended("out", id, rej);
        }
        return;
      }
      if (!opt_.metadata) return;
      if (msg->type == ph::wire::MetadataMsgType::reject) {
        fail("the peer rejected metadata piece " + std::to_string(msg->piece));
        return;
      }
      if (msg->type != ph::wire::MetadataMsgType::data) return;
      if (auto r = assembler_.add(*msg); !r) {
        fail(r.error().message);
        return;
      }
      if (in_flight_ > 0) --in_flight_;
      if (assembler_.complete()) {
        finish_metadata();
      } else {
        request_metadata_pieces(c);
      }
    }
  }

  void start_metadata(ph::net::PeerConnection& c) {
    const std::uint8_t id = remote_ext_->id_of(ph::wire::kUtMetadata);
    if (id == 0) {
      fail("the peer does not offer ut_metadata");
      return;
    }
    if (!remote_ext_->metadata_size) {
      fail("the peer did not announce metadata_size (it may not have the metadata itself)");
      return;
    }
    if (auto r = assembler_.reset(*remote_ext_->metadata_size); !r) {
      fail(r.error().message);
      return;
    }
    note("metadata", {{"size", *remote_ext_->metadata_size}, {"pieces", assembler_.piece_count()}},
         "fetching " + std::to_string(*remote_ext_->metadata_size) + " bytes of metadata in " +
             std::to_string(assembler_.piece_count()) + " piece(s)");
    request_metadata_pieces(c);
  }

  void request_metadata_pieces(ph::net::PeerConnection& c) {
    const std::uint8_t id = remote_ext_->id_of(ph::wire::kUtMetadata);
    while (in_flight_ < kMetadataPipeline && next_metadata_piece_ < assembler_.piece_count()) {
      std::string req = ph::wire::encode_metadata_request(next_metadata_piece_++);
      c.send_extended(id, req);
      print_extended("out", id, req);
      ++in_flight_;
    }
  }

  void finish_metadata() {
    auto info = assembler_.verify(info_hash_);
    if (!info) {
      fail(info.error().message);
      return;
    }
    auto parsed = ph::parse_info_dict(*info);
    std::string torrent;
    if (parsed) {
      if (magnet_ && !magnet_->trackers.empty()) {
        for (const auto& t : magnet_->trackers) parsed->trackers.push_back({t});
      }
      torrent = ph::encode_torrent_file(*parsed);
    } else {
      torrent = "d4:info" + *info + "e";  // still a valid .torrent around the verified bytes
    }
    json j = {{"info_hash", info_hash_.hex()}, {"size", info->size()}, {"verified", true}};
    std::string text = "metadata verified: SHA-1 matches " + info_hash_.hex();
    if (parsed) {
      j["name"] = parsed->name;
      j["pieces"] = parsed->piece_count();
      j["piece_length"] = parsed->piece_length;
      j["files"] = parsed->files.size();
      text += " (name \"" + parsed->name + "\", " + std::to_string(parsed->piece_count()) + " pieces, " +
              std::to_string(parsed->files.size()) + " files)";
      conn_->set_piece_count(parsed->piece_count());
      meta_ = std::move(*parsed);
    } else {
      j["parse_error"] = parsed.error().message;
    }
    if (!opt_.torrent_out.empty()) {
      if (!write_file(opt_.torrent_out, torrent)) {
        fail("cannot write " + opt_.torrent_out);
        return;
      }
      j["saved"] = opt_.torrent_out;
      text += ", saved to " + opt_.torrent_out;
    }
    note("metadata_ok", j, text);
    metadata_done_ = true;
    maybe_start_request();
    maybe_finish();
  }

  void maybe_start_request() {
    if (!opt_.request || request_sent_ || block_done_ || !conn_ || conn_->state() != ph::net::PeerConnection::State::connected) {
      return;
    }
    if (opt_.metadata && !metadata_done_) return;  // validate the request against the torrent first
    const auto [piece, offset, length] = *opt_.request;
    if (meta_) {
      if (piece >= meta_->piece_count()) {
        fail("piece " + std::to_string(piece) + " is out of range (the torrent has " +
             std::to_string(meta_->piece_count()) + ")");
        return;
      }
      if (std::uint64_t{offset} + length > meta_->piece_size(piece)) {
        fail("offset+length exceeds piece " + std::to_string(piece) + " (" + std::to_string(meta_->piece_size(piece)) +
             " bytes)");
        return;
      }
    }
    if (!interested_sent_) {
      conn_->send_interested();
      print_simple("out", MessageKind::interested);
      interested_sent_ = true;
    }
    if (peer_choking_ && !allowed_fast_) return;  // wait for unchoke (or allowed_fast for this piece)
    conn_->send_request(piece, offset, length);
    ph::wire::Message m;
    m.kind = MessageKind::request;
    m.piece = piece;
    m.offset = offset;
    m.length = length;
    print_message("out", m);
    request_sent_ = true;
  }

  void handle_piece(const ph::wire::Message& m) {
    const bool ours = opt_.request && m.piece == (*opt_.request)[0] && m.offset == (*opt_.request)[1];
    const std::string_view data = m.payload_view();
    json j = {{"type", "piece"}, {"piece", m.piece}, {"offset", m.offset}, {"length", m.length},
              {"sha1", ph::Sha1::of(data).hex()}};
    if (ours) j["data_hex"] = hex(data);
    if (!ours && opt_.quiet_pieces) return;
    emit("in", j, "piece piece=" + std::to_string(m.piece) + " offset=" + std::to_string(m.offset) +
                      " length=" + std::to_string(m.length) + " sha1=" + ph::Sha1::of(data).hex() +
                      " first bytes: " + hex(data.substr(0, 16)));
    if (!ours || block_done_) return;
    if (m.length != (*opt_.request)[2]) {
      fail("the block has " + std::to_string(m.length) + " bytes, we asked for " + std::to_string((*opt_.request)[2]));
      return;
    }
    if (!opt_.block_out.empty() && !write_file(opt_.block_out, data)) {
      fail("cannot write " + opt_.block_out);
      return;
    }
    block_done_ = true;
    note("block_ok", {{"piece", m.piece}, {"offset", m.offset}, {"length", m.length}},
         "block received" + (opt_.block_out.empty() ? std::string() : ", saved to " + opt_.block_out));
    maybe_finish();
  }

  void maybe_finish() {
    if ((!opt_.metadata || metadata_done_) && (!opt_.request || block_done_)) finish(0, "done");
  }

  void fail(const std::string& why) {
    note("error", {{"message", why}}, "error: " + why);
    finish(1, why);
  }

  void finish(int code, const std::string& why) {
    if (done_) return;
    done_ = true;
    exit_code_ = code;
    deadline_.cancel();
    watch_timer_.cancel();
    if (conn_) {
      conn_->close(why);
      conn_->set_handler(nullptr);
    }
  }

  asio::io_context& io_;
  Options opt_;
  asio::steady_timer deadline_;
  asio::steady_timer watch_timer_;
  std::shared_ptr<ph::net::PeerConnection> conn_;
  ph::InfoHash info_hash_;
  ph::PeerId our_peer_id_;
  std::optional<ph::Metainfo> meta_;
  std::optional<ph::Magnet> magnet_;
  std::optional<ph::wire::ExtensionHandshake> remote_ext_;
  ph::wire::MetadataAssembler assembler_;
  std::uint32_t next_metadata_piece_ = 0;
  std::uint32_t in_flight_ = 0;
  bool metadata_done_ = false;
  bool peer_choking_ = true;
  bool allowed_fast_ = false;
  bool interested_sent_ = false;
  bool request_sent_ = false;
  bool block_done_ = false;
  bool done_ = false;
  int exit_code_ = 1;
};

int usage_error(const std::string& why) {
  std::fprintf(stderr, "bt-wire: %s\n(try bt-wire --help)\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      (void)name;
      return std::string(argv[++i]);
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--metadata") {
      opt.metadata = true;
    } else if (a == "--json") {
      opt.json = true;
    } else if (a == "--quiet-pieces") {
      opt.quiet_pieces = true;
    } else if (a == "-o" || a == "--request" || a == "--block-out" || a == "--watch" || a == "--timeout") {
      auto v = value(a.c_str());
      if (!v) return usage_error(a + " needs a value");
      if (a == "-o") {
        opt.torrent_out = *v;
      } else if (a == "--block-out") {
        opt.block_out = *v;
      } else if (a == "--request") {
        opt.request = parse_request(*v);
        if (!opt.request) return usage_error("--request wants PIECE:OFFSET:LENGTH, got " + *v);
        if ((*opt.request)[2] == 0 || (*opt.request)[2] > 128 * 1024) {
          return usage_error("--request length must be 1..131072 (blocks are normally 16384)");
        }
      } else {
        char* end = nullptr;
        double d = std::strtod(v->c_str(), &end);
        if (end == v->c_str() || *end != '\0' || !(d > 0) || d > 86400) return usage_error(a + " wants seconds");
        (a == "--watch" ? opt.watch : opt.timeout) = d;
      }
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      return usage_error("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) return usage_error("expected HOST:PORT and INFOHASH|FILE.torrent|MAGNET");
  if (!opt.torrent_out.empty() && !opt.metadata) return usage_error("-o needs --metadata");
  if (!opt.block_out.empty() && !opt.request) return usage_error("--block-out needs --request");
  opt.peer = positional[0];
  opt.target = positional[1];

  // What torrent: a 40-hex info-hash, a magnet link, or a .torrent file.
  ph::InfoHash ih;
  std::optional<ph::Metainfo> meta;
  std::optional<ph::Magnet> magnet;
  if (auto h = ph::Id20::from_hex(opt.target)) {
    ih = *h;
  } else if (opt.target.rfind("magnet:", 0) == 0) {
    auto m = ph::parse_magnet(opt.target);
    if (!m) return usage_error("bad magnet link: " + m.error().message);
    ih = m->info_hash;
    magnet = std::move(*m);
  } else {
    auto data = read_file(opt.target);
    if (!data) return usage_error(data.error().message);
    auto m = ph::parse_metainfo(*data);
    if (!m) return usage_error(opt.target + ": " + m.error().message);
    ih = m->info_hash;
    meta = std::move(*m);
  }

  // Where: HOST:PORT (numeric or a name; [v6]:port).
  asio::io_context io;
  asio::ip::tcp::endpoint ep;
  {
    std::string host, port;
    const std::string& p = opt.peer;
    if (!p.empty() && p[0] == '[') {
      auto close = p.find(']');
      if (close == std::string::npos || close + 2 > p.size() || p[close + 1] != ':') {
        return usage_error("bad peer address " + p);
      }
      host = p.substr(1, close - 1);
      port = p.substr(close + 2);
    } else {
      auto colon = p.rfind(':');
      if (colon == std::string::npos) return usage_error("peer address needs a port: " + p);
      host = p.substr(0, colon);
      port = p.substr(colon + 1);
    }
    asio::ip::tcp::resolver resolver(io);
    std::error_code ec;
    auto results = resolver.resolve(host, port, asio::ip::resolver_base::numeric_service, ec);
    if (ec || results.empty()) return usage_error("cannot resolve " + p + ": " + ec.message());
    ep = results.begin()->endpoint();
  }

  WireTool tool(io, std::move(opt));
  return tool.run(ep, ih, std::move(meta), std::move(magnet));
}
