// Extension payload codecs: BEP 10 handshake, BEP 9 ut_metadata (+ assembler), BEP 11 ut_pex, BEP 54 lt_donthave.
#include "net/extension_messages.hpp"

#include <cstring>

#include "net/bencode.hpp"
#include "net/sha1.hpp"

namespace ph::wire {

namespace {

// Small dictionaries only: extension messages never need deep nesting or many tokens.
bencode::DecodeLimits ext_limits() {
  bencode::DecodeLimits l;
  l.max_depth = 8;
  l.max_tokens = 4096;
  // Real clients (older libtorrent, uTorrent) have sent unsorted keys in extension messages; be lenient here.
  l.require_sorted_keys = false;
  return l;
}

PeerAddress address_from_compact(const char* p, bool v6) {
  PeerAddress a;
  a.v6 = v6;
  const std::size_t n = v6 ? 16 : 4;
  std::memcpy(a.ip.data(), p, n);
  a.port = static_cast<std::uint16_t>(static_cast<std::uint8_t>(p[n]) << 8 | static_cast<std::uint8_t>(p[n + 1]));
  return a;
}

void append_compact(std::string& out, const PeerAddress& a) {
  out.append(reinterpret_cast<const char*>(a.ip.data()), a.v6 ? 16 : 4);
  out.push_back(static_cast<char>(a.port >> 8));
  out.push_back(static_cast<char>(a.port));
}

}  // namespace

std::uint8_t ExtensionHandshake::id_of(std::string_view name) const {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

Result<ExtensionHandshake> parse_extension_handshake(std::string_view payload, const ExtensionHandshakeLimits& limits) {
  auto doc = bencode::decode(payload, ext_limits());
  if (!doc) return make_error("extension handshake: " + doc.error().message);
  bencode::Node root = doc->root();
  if (!root.is_dict()) return make_error("extension handshake is not a dictionary");
  ExtensionHandshake h;
  if (bencode::Node m = root.find_dict("m")) {
    for (auto [name, id] : m.dict()) {
      if (h.m.size() >= limits.max_extensions) return make_error("extension handshake: too many entries in m");
      // Ids are one byte on the wire; out-of-range or non-integer ids mean "not usable".
      if (!id.is_int() || id.as_int() < 0 || id.as_int() > 255) continue;
      h.m[std::string(name)] = static_cast<std::uint8_t>(id.as_int());
    }
  }
  if (auto v = root.find_string("v")) h.client = std::string(v->substr(0, limits.max_client_name));
  if (auto p = root.find_int("p"); p && *p > 0 && *p <= 65535) h.listen_port = static_cast<std::uint16_t>(*p);
  if (auto q = root.find_int("reqq"); q && *q > 0) {
    h.reqq = static_cast<std::uint32_t>(std::min<std::int64_t>(*q, 1 << 20));
  }
  if (auto s = root.find_int("metadata_size"); s && *s > 0 && static_cast<std::uint64_t>(*s) <= limits.max_metadata_size) {
    h.metadata_size = static_cast<std::uint64_t>(*s);
  }
  if (auto ip = root.find_string("yourip"); ip && (ip->size() == 4 || ip->size() == 16)) {
    PeerAddress a;
    a.v6 = ip->size() == 16;
    std::memcpy(a.ip.data(), ip->data(), ip->size());
    h.yourip = a;
  }
  if (auto u = root.find_int("upload_only")) h.upload_only = *u != 0;
  return h;
}

std::string encode_extension_handshake(const ExtensionHandshake& h) {
  bencode::Value::Dict d;
  bencode::Value::Dict m;
  for (const auto& [name, id] : h.m) m[name] = bencode::Value(static_cast<std::int64_t>(id));
  d["m"] = bencode::Value(std::move(m));
  if (!h.client.empty()) d["v"] = bencode::Value(h.client);
  if (h.listen_port) d["p"] = bencode::Value(static_cast<std::int64_t>(*h.listen_port));
  if (h.reqq) d["reqq"] = bencode::Value(static_cast<std::int64_t>(*h.reqq));
  if (h.metadata_size) d["metadata_size"] = bencode::Value(static_cast<std::int64_t>(*h.metadata_size));
  if (h.yourip) {
    d["yourip"] = bencode::Value(std::string(reinterpret_cast<const char*>(h.yourip->ip.data()), h.yourip->v6 ? 16 : 4));
  }
  if (h.upload_only) d["upload_only"] = bencode::Value(static_cast<std::int64_t>(*h.upload_only ? 1 : 0));
  return bencode::Value(std::move(d)).encode();
}

// ---- ut_metadata ------------------------------------------------------------------------------------------------

Result<MetadataMessage> parse_metadata_message(std::string_view payload) {
  std::size_t used = 0;
  auto doc = bencode::decode_prefix(payload, &used, ext_limits());
  if (!doc) return make_error("ut_metadata: " + doc.error().message);
  bencode::Node root = doc->root();
  if (!root.is_dict()) return make_error("ut_metadata message is not a dictionary");
  auto type = root.find_int("msg_type");
  auto piece = root.find_int("piece");
  if (!type || !piece) return make_error("ut_metadata message lacks msg_type or piece");
  if (*piece < 0 || *piece > 0xFFFF) return make_error("ut_metadata piece " + std::to_string(*piece) + " out of range");
  MetadataMessage msg;
  msg.piece = static_cast<std::uint32_t>(*piece);
  switch (*type) {
    case 0: msg.type = MetadataMsgType::request; break;
    case 1: {
      msg.type = MetadataMsgType::data;
      auto total = root.find_int("total_size");
      if (!total || *total <= 0) return make_error("ut_metadata data without a positive total_size");
      msg.total_size = static_cast<std::uint64_t>(*total);
      msg.data = payload.substr(used);
      if (msg.data.size() > kMetadataPieceSize) return make_error("ut_metadata data piece larger than 16 KiB");
      break;
    }
    case 2: msg.type = MetadataMsgType::reject; break;
    default: return make_error("ut_metadata unknown msg_type " + std::to_string(*type));
  }
  if (msg.type != MetadataMsgType::data && used != payload.size()) {
    return make_error("ut_metadata request/reject with trailing bytes");
  }
  return msg;
}

static std::string metadata_header(int type, std::uint32_t piece, std::uint64_t total_size) {
  std::string out;
  bencode::Encoder e(out);
  e.begin_dict().key("msg_type").integer(type).key("piece").integer(piece);
  if (type == 1) e.key("total_size").integer(static_cast<std::int64_t>(total_size));
  e.end();
  return out;
}

std::string encode_metadata_request(std::uint32_t piece) { return metadata_header(0, piece, 0); }
std::string encode_metadata_reject(std::uint32_t piece) { return metadata_header(2, piece, 0); }
std::string encode_metadata_data(std::uint32_t piece, std::uint64_t total_size, std::string_view data) {
  std::string out = metadata_header(1, piece, total_size);
  out.append(data);
  return out;
}

std::uint32_t metadata_piece_count(std::uint64_t total_size) {
  return static_cast<std::uint32_t>((total_size + kMetadataPieceSize - 1) / kMetadataPieceSize);
}

Result<void> MetadataAssembler::reset(std::uint64_t total_size, std::uint64_t max_size) {
  total_size_ = 0;
  bytes_.clear();
  have_.clear();
  received_ = 0;
  if (total_size == 0) return make_error("metadata size is 0");
  if (total_size > max_size) {
    return make_error("metadata size " + std::to_string(total_size) + " exceeds cap " + std::to_string(max_size));
  }
  total_size_ = total_size;
  bytes_.assign(total_size, '\0');
  have_.assign(metadata_piece_count(total_size), false);
  return {};
}

std::optional<std::uint32_t> MetadataAssembler::next_missing() const {
  for (std::size_t i = 0; i < have_.size(); ++i) {
    if (!have_[i]) return static_cast<std::uint32_t>(i);
  }
  return std::nullopt;
}

Result<void> MetadataAssembler::add(const MetadataMessage& data) {
  if (!started()) return make_error("metadata assembler not started");
  if (data.type != MetadataMsgType::data) return make_error("not a ut_metadata data message");
  if (data.total_size != total_size_) {
    return make_error("ut_metadata total_size " + std::to_string(data.total_size) + " differs from " +
                      std::to_string(total_size_));
  }
  if (data.piece >= have_.size()) return make_error("ut_metadata piece " + std::to_string(data.piece) + " out of range");
  const std::uint64_t offset = std::uint64_t{data.piece} * kMetadataPieceSize;
  const std::uint64_t expected = std::min<std::uint64_t>(kMetadataPieceSize, total_size_ - offset);
  if (data.data.size() != expected) {
    return make_error("ut_metadata piece " + std::to_string(data.piece) + " has " + std::to_string(data.data.size()) +
                      " bytes, expected " + std::to_string(expected));
  }
  if (have_[data.piece]) return {};
  std::memcpy(bytes_.data() + offset, data.data.data(), data.data.size());
  have_[data.piece] = true;
  ++received_;
  return {};
}

Result<std::string> MetadataAssembler::verify(const InfoHash& expected) {
  if (!complete()) return make_error("metadata incomplete");
  Sha1Digest d = Sha1::of(bytes_);
  if (std::memcmp(d.bytes.data(), expected.bytes.data(), 20) != 0) {
    std::fill(have_.begin(), have_.end(), false);
    received_ = 0;
    return make_error("metadata SHA-1 " + d.hex() + " does not match info-hash " + expected.hex());
  }
  return bytes_;
}

// ---- ut_pex -----------------------------------------------------------------------------------------------------

Result<PexMessage> parse_pex(std::string_view payload, const PexLimits& limits) {
  auto doc = bencode::decode(payload, ext_limits());
  if (!doc) return make_error("ut_pex: " + doc.error().message);
  bencode::Node root = doc->root();
  if (!root.is_dict()) return make_error("ut_pex message is not a dictionary");
  PexMessage msg;
  auto list = [&](std::string_view key, bool v6, std::size_t max, auto&& each) -> Result<void> {
    auto s = root.find_string(key);
    if (!s) return {};
    const std::size_t stride = v6 ? 18 : 6;
    if (s->size() % stride != 0) {
      return make_error("ut_pex " + std::string(key) + " length " + std::to_string(s->size()) +
                        " is not a multiple of " + std::to_string(stride));
    }
    const std::size_t n = s->size() / stride;
    if (n > max) {
      return make_error("ut_pex " + std::string(key) + " lists " + std::to_string(n) + " peers, cap is " +
                        std::to_string(max));
    }
    for (std::size_t i = 0; i < n; ++i) each(address_from_compact(s->data() + i * stride, v6), i);
    return {};
  };
  for (bool v6 : {false, true}) {
    const std::string_view added_key = v6 ? "added6" : "added";
    const std::string_view flags_key = v6 ? "added6.f" : "added.f";
    const std::string_view dropped_key = v6 ? "dropped6" : "dropped";
    std::string_view flags = root.find_string(flags_key).value_or(std::string_view{});
    auto r = list(added_key, v6, limits.max_added, [&](const PeerAddress& a, std::size_t i) {
      msg.added.push_back(PexPeer{a, i < flags.size() ? static_cast<std::uint8_t>(flags[i]) : std::uint8_t{0}});
    });
    if (!r) return r.error();
    r = list(dropped_key, v6, limits.max_dropped, [&](const PeerAddress& a, std::size_t) { msg.dropped.push_back(a); });
    if (!r) return r.error();
  }
  return msg;
}

std::string encode_pex(const PexMessage& msg) {
  std::string added, added_f, added6, added6_f, dropped, dropped6;
  for (const auto& p : msg.added) {
    append_compact(p.address.v6 ? added6 : added, p.address);
    (p.address.v6 ? added6_f : added_f).push_back(static_cast<char>(p.flags));
  }
  for (const auto& a : msg.dropped) append_compact(a.v6 ? dropped6 : dropped, a);
  // Keys in sorted order; empty lists are still sent for the IPv4 keys (clients expect them), IPv6 only if used.
  std::string out;
  bencode::Encoder e(out);
  e.begin_dict();
  e.key("added").string(added).key("added.f").string(added_f);
  if (!added6.empty()) e.key("added6").string(added6).key("added6.f").string(added6_f);
  e.key("dropped").string(dropped);
  if (!dropped6.empty()) e.key("dropped6").string(dropped6);
  e.end();
  return out;
}

// ---- lt_donthave ------------------------------------------------------------------------------------------------

Result<PieceIndex> parse_donthave(std::string_view payload) {
  if (payload.size() != 4) return make_error("lt_donthave payload of " + std::to_string(payload.size()) + " bytes, expected 4");
  auto u = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<std::uint8_t>(payload[i])); };
  return PieceIndex{u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3)};
}

std::string encode_donthave(PieceIndex piece) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(piece >> 24);
  out[1] = static_cast<char>(piece >> 16);
  out[2] = static_cast<char>(piece >> 8);
  out[3] = static_cast<char>(piece);
  return out;
}

}  // namespace ph::wire
