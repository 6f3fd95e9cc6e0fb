// KRPC codec: strict field checking on decode, canonical (sorted-key) encoding.
#include "net/krpc.hpp"

#include <cstring>

#include "net/bencode.hpp"

namespace ph::krpc {

namespace {

constexpr std::size_t kNode4 = 26;
constexpr std::size_t kNode6 = 38;

Result<Message> fail(DecodeFailure* out, std::string message, std::string tid = {}, bool reply = false,
                     int code = protocol_error) {
  if (out) {
    out->message = message;
    out->transaction_id = std::move(tid);
    out->reply_expected = reply;
    out->code = code;
  }
  return ph::make_error("krpc: " + std::move(message));
}

// Reads a 20-byte id field; absent or of another length is an error.
std::optional<Id20> read_id(const bencode::Node& dict, std::string_view key) {
  auto s = dict.find_string(key);
  if (!s || s->size() != 20) return std::nullopt;
  return Id20::from_bytes(*s);
}

void append_be16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint16_t read_be16(const char* p) {
  return static_cast<std::uint16_t>(static_cast<std::uint8_t>(p[0]) << 8 | static_cast<std::uint8_t>(p[1]));
}

Result<Message> decode_query(const bencode::Node& root, Message msg, const Limits& limits, DecodeFailure* failure) {
  const std::string& tid = msg.transaction_id;
  auto method = root.find_string("q");
  if (!method) return fail(failure, "query without a string 'q'", tid, true);
  bencode::Node args = root.find_dict("a");
  if (!args) return fail(failure, "query without an 'a' dictionary", tid, true);
  Query q;
  auto id = read_id(args, "id");
  if (!id) return fail(failure, "query without a 20-byte 'id'", tid, true);
  q.id = *id;
  if (auto ro = args.find_int("ro")) q.read_only = *ro == 1;
  if (bencode::Node want = args.find_list("want")) {
    for (bencode::Node w : want.list()) {
      if (!w.is_string()) continue;
      if (w.as_string() == "n4") q.want_v4 = true;
      if (w.as_string() == "n6") q.want_v6 = true;
    }
  }
  if (*method == "ping") {
    q.method = Method::ping;
  } else if (*method == "find_node") {
    q.method = Method::find_node;
    auto target = read_id(args, "target");
    if (!target) return fail(failure, "find_node without a 20-byte 'target'", tid, true);
    q.target = *target;
  } else if (*method == "get_peers" || *method == "announce_peer") {
    q.method = *method == "get_peers" ? Method::get_peers : Method::announce_peer;
    auto hash = read_id(args, "info_hash");
    if (!hash) return fail(failure, std::string(*method) + " without a 20-byte 'info_hash'", tid, true);
    q.target = *hash;
    if (q.method == Method::announce_peer) {
      auto token = args.find_string("token");
      if (!token) return fail(failure, "announce_peer without a string 'token'", tid, true);
      if (token->size() > limits.max_token) return fail(failure, "announce_peer token too long", tid, true);
      q.token = std::string(*token);
      if (auto implied = args.find_int("implied_port")) q.implied_port = *implied == 1;
      auto port = args.find_int("port");
      if (port && (*port < 0 || *port > 65535)) return fail(failure, "announce_peer port out of range", tid, true);
      if (!q.implied_port && (!port || *port == 0)) {
        return fail(failure, "announce_peer without a valid 'port'", tid, true);
      }
      q.port = port ? static_cast<std::uint16_t>(*port) : 0;
    }
  } else {
    return fail(failure, "unknown method '" + std::string(method->substr(0, 32)) + "'", tid, true, method_unknown);
  }
  msg.body = std::move(q);
  return msg;
}

Result<Message> decode_response(const bencode::Node& root, Message msg, const Limits& limits,
                                DecodeFailure* failure) {
  bencode::Node r = root.find_dict("r");
  if (!r) return fail(failure, "response without an 'r' dictionary");
  Response resp;
  auto id = read_id(r, "id");
  if (!id) return fail(failure, "response without a 20-byte 'id'");
  resp.id = *id;
  if (bencode::Node n = r.find("nodes")) {
    if (!n.is_string() || !decode_compact_nodes(n.as_string(), false, resp.nodes)) {
      return fail(failure, "'nodes' is not a multiple of 26 bytes");
    }
  }
  if (bencode::Node n = r.find("nodes6")) {
    if (!n.is_string() || !decode_compact_nodes(n.as_string(), true, resp.nodes6)) {
      return fail(failure, "'nodes6' is not a multiple of 38 bytes");
    }
  }
  if (bencode::Node values = r.find("values")) {
    if (!values.is_list()) return fail(failure, "'values' is not a list");
    for (bencode::Node v : values.list()) {
      // One malformed entry does not poison the others; it is simply skipped.
      if (!v.is_string()) continue;
      if (auto peer = decode_compact_peer(v.as_string())) resp.values.push_back(*peer);
    }
  }
  if (bencode::Node token = r.find("token")) {
    if (!token.is_string() || token.as_string().size() > limits.max_token) {
      return fail(failure, "'token' is not a string of at most " + std::to_string(limits.max_token) + " bytes");
    }
    resp.token = std::string(token.as_string());
  }
  msg.body = std::move(resp);
  return msg;
}

Result<Message> decode_error(const bencode::Node& root, Message msg, const Limits& limits, DecodeFailure* failure) {
  bencode::Node e = root.find_list("e");
  if (!e || e.size() < 1 || !e.at(0).is_int()) return fail(failure, "error without an 'e' list [code, message]");
  ErrorReply err;
  std::int64_t code = e.at(0).as_int();
  err.code = code < 0 || code > 1'000'000 ? generic_error : static_cast<int>(code);
  if (e.size() > 1 && e.at(1).is_string()) err.message = std::string(e.at(1).as_string().substr(0, limits.max_error_message));
  msg.body = std::move(err);
  return msg;
}

void encode_query(bencode::Encoder& enc, const Query& q) {
  // Keys of 'a' in bencode order: id, implied_port, info_hash, port, ro, target, token, want.
  const bool announce = q.method == Method::announce_peer;
  const bool has_hash = q.method == Method::get_peers || announce;
  enc.key("a").begin_dict();
  enc.key("id").string(q.id.view());
  if (announce) enc.key("implied_port").integer(q.implied_port ? 1 : 0);
  if (has_hash) enc.key("info_hash").string(q.target.view());
  if (announce) enc.key("port").integer(q.port);
  if (q.read_only) enc.key("ro").integer(1);
  if (q.method == Method::find_node) enc.key("target").string(q.target.view());
  if (announce) enc.key("token").string(q.token);
  if (q.want_v4 || q.want_v6) {
    enc.key("want").begin_list();
    if (q.want_v4) enc.string("n4");
    if (q.want_v6) enc.string("n6");
    enc.end();
  }
  enc.end();
}

void encode_response(bencode::Encoder& enc, const Response& r) {
  enc.key("r").begin_dict();
  enc.key("id").string(r.id.view());
  if (!r.nodes.empty()) enc.key("nodes").string(encode_compact_nodes(r.nodes, false));
  if (!r.nodes6.empty()) enc.key("nodes6").string(encode_compact_nodes(r.nodes6, true));
  if (r.token) enc.key("token").string(*r.token);
  if (!r.values.empty()) {
    enc.key("values").begin_list();
    for (const auto& v : r.values) enc.string(encode_compact_peer(v));
    enc.end();
  }
  enc.end();
}

}  // namespace

const char* method_name(Method m) {
  switch (m) {
    case Method::ping: return "ping";
    case Method::find_node: return "find_node";
    case Method::get_peers: return "get_peers";
    case Method::announce_peer: return "announce_peer";
  }
  return "?";
}

Result<Message> decode(std::string_view datagram, const Limits& limits, DecodeFailure* failure) {
  if (datagram.size() > limits.max_datagram) {
    return fail(failure, "datagram of " + std::to_string(datagram.size()) + " bytes exceeds the limit of " +
                             std::to_string(limits.max_datagram));
  }
  bencode::DecodeLimits bl;
  bl.max_depth = limits.max_bencode_depth;
  bl.max_tokens = limits.max_bencode_tokens;
  // Some deployed clients do not sort dictionary keys; refusing them would cut us off from part of the DHT.
  bl.require_sorted_keys = false;
  auto doc = bencode::decode(datagram, bl);
  if (!doc) return fail(failure, "not bencode: " + doc.error().message);
  bencode::Node root = doc->root();
  if (!root.is_dict()) return fail(failure, "top level is not a dictionary");
  Message msg;
  auto tid = root.find_string("t");
  if (!tid) return fail(failure, "no string transaction id 't'");
  if (tid->size() > limits.max_transaction_id) return fail(failure, "transaction id too long");
  msg.transaction_id = std::string(*tid);
  if (auto v = root.find_string("v")) msg.version = std::string(v->substr(0, limits.max_version));
  if (auto ip = root.find_string("ip")) msg.your_ip = decode_compact_peer(*ip);
  auto y = root.find_string("y");
  if (!y) {
    // Without 'y' we cannot know it is a query; answering would let anyone make us send packets.
    return fail(failure, "no string message type 'y'", msg.transaction_id, root.find_dict("a") && root.find("q"));
  }
  if (*y == "q") return decode_query(root, std::move(msg), limits, failure);
  // libtorrent's errors carry both 'e' and 'r'; 'y' decides.
  if (*y == "r") return decode_response(root, std::move(msg), limits, failure);
  if (*y == "e") return decode_error(root, std::move(msg), limits, failure);
  return fail(failure, "unknown message type 'y'");
}

std::string encode(const Message& message) {
  std::string out;
  out.reserve(128);
  bencode::Encoder enc(out);
  enc.begin_dict();
  // Keys in bencode order: a, e, ip, q, r, t, v, y.
  if (message.is_query()) encode_query(enc, message.query());
  if (message.is_error()) {
    const auto& e = message.error();
    enc.key("e").begin_list().integer(e.code).string(e.message).end();
  }
  if (message.your_ip) enc.key("ip").string(encode_compact_peer(*message.your_ip));
  if (message.is_query()) enc.key("q").string(method_name(message.query().method));
  if (message.is_response()) encode_response(enc, message.response());
  enc.key("t").string(message.transaction_id);
  if (!message.version.empty()) enc.key("v").string(message.version);
  enc.key("y").string(message.is_query() ? "q" : message.is_response() ? "r" : "e");
  enc.end();
  return out;
}

std::string encode_compact_peer(const PeerAddress& peer) {
  std::string out;
  out.reserve(18);
  std::size_t n = peer.v6 ? 16 : 4;
  out.append(reinterpret_cast<const char*>(peer.ip.data()), n);
  append_be16(out, peer.port);
  return out;
}

std::optional<PeerAddress> decode_compact_peer(std::string_view bytes) {
  if (bytes.size() != 6 && bytes.size() != 18) return std::nullopt;
  PeerAddress a;
  a.v6 = bytes.size() == 18;
  std::size_t n = a.v6 ? 16 : 4;
  std::memcpy(a.ip.data(), bytes.data(), n);
  a.port = read_be16(bytes.data() + n);
  return a;
}

std::string encode_compact_nodes(std::span<const NodeInfo> nodes, bool v6) {
  std::string out;
  out.reserve(nodes.size() * (v6 ? kNode6 : kNode4));
  for (const auto& n : nodes) {
    if (n.address.v6 != v6) continue;
    out.append(n.id.view());
    out.append(encode_compact_peer(n.address));
  }
  return out;
}

bool decode_compact_nodes(std::string_view bytes, bool v6, std::vector<NodeInfo>& out) {
  const std::size_t stride = v6 ? kNode6 : kNode4;
  if (bytes.size() % stride != 0) return false;
  out.reserve(out.size() + bytes.size() / stride);
  for (std::size_t at = 0; at < bytes.size(); at += stride) {
    NodeInfo n;
    n.id = Id20::from_bytes(bytes.substr(at, 20));
    n.address = *decode_compact_peer(bytes.substr(at + 20, stride - 20));
    out.push_back(n);
  }
  return true;
}

Message make_query(std::string transaction_id, Query q) {
  Message m;
  m.transaction_id = std::move(transaction_id);
  m.body = std::move(q);
  return m;
}

Message make_response(std::string transaction_id, Response r) {
  Message m;
  m.transaction_id = std::move(transaction_id);
  m.body = std::move(r);
  return m;
}

Message make_error(std::string transaction_id, int code, std::string message) {
  Message m;
  m.transaction_id = std::move(transaction_id);
  m.body = ErrorReply{code, std::move(message)};
  return m;
}

}  // namespace ph::krpc
