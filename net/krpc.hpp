// KRPC (BEP 5) codec: the four DHT queries, their responses and error replies, compact node info and compact peer
// values. Pure functions over byte strings: no sockets, no clocks. Decoding is bounded (datagram size, bencode depth
// and token count, token and transaction-id lengths) and never trusts field types: every field is checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::krpc {

enum class Method : std::uint8_t { ping, find_node, get_peers, announce_peer };
const char* method_name(Method m);

// BEP 5 error codes.
enum ErrorCode : int { generic_error = 201, server_error = 202, protocol_error = 203, method_unknown = 204 };

// A node as carried in "nodes" (IPv4, 26 bytes each) or "nodes6" (BEP 32, IPv6, 38 bytes each).
struct NodeInfo {
  Id20 id;
  PeerAddress address;
  bool operator==(const NodeInfo&) const = default;
};

struct Query {
  Method method = Method::ping;
  Id20 id;      // the querying node's id ("a.id")
  Id20 target;  // find_node: "target"; get_peers and announce_peer: "info_hash"; unused for ping
  // announce_peer only.
  std::uint16_t port = 0;
  bool implied_port = false;  // BEP 5: use the UDP source port instead of `port` (peers behind NAT, uTP)
  std::string token;
  // BEP 43: a read-only node must not be added to routing tables.
  bool read_only = false;
  // BEP 32 "want": which address families the querier wants nodes for. Both false means "same as the query".
  bool want_v4 = false;
  bool want_v6 = false;
};

struct Response {
  Id20 id;
  std::vector<NodeInfo> nodes;   // "nodes": IPv4 compact node info
  std::vector<NodeInfo> nodes6;  // "nodes6": IPv6 compact node info
  std::vector<PeerAddress> values;  // get_peers: compact peers (6 or 18 bytes each)
  std::optional<std::string> token;  // get_peers: the write token for announce_peer
};

struct ErrorReply {
  int code = generic_error;
  std::string message;
};

struct Message {
  std::string transaction_id;  // "t": opaque, echoed in the reply
  std::string version;         // "v": client version, optional
  std::optional<PeerAddress> your_ip;  // "ip" (BEP 42): the address the replier saw us at
  std::variant<Query, Response, ErrorReply> body;

  bool is_query() const { return body.index() == 0; }
  bool is_response() const { return body.index() == 1; }
  bool is_error() const { return body.index() == 2; }
  const Query& query() const { return std::get<0>(body); }
  const Response& response() const { return std::get<1>(body); }
  const ErrorReply& error() const { return std::get<2>(body); }
};

struct Limits {
  std::size_t max_datagram = 4096;       // larger packets are rejected before parsing
  std::size_t max_transaction_id = 16;   // real clients use 2..4 bytes
  std::size_t max_token = 64;            // real tokens are 4..20 bytes
  std::size_t max_version = 16;
  std::size_t max_error_message = 256;   // longer messages are truncated, not rejected
  std::uint32_t max_bencode_depth = 8;   // KRPC needs 3; extensions (BEP 44 values) a little more
  std::uint32_t max_bencode_tokens = 1024;
};

// Why a datagram was rejected, and, when it looked like a query with a transaction id, the error the sender
// should get back (203 protocol error or 204 method unknown). Packets that are not queries are never answered.
struct DecodeFailure {
  std::string message;
  std::string transaction_id;
  bool reply_expected = false;  // a query we can answer with an error
  int code = protocol_error;
};

Result<Message> decode(std::string_view datagram, const Limits& limits = {}, DecodeFailure* failure = nullptr);

// Encodes with keys in bencode order. Empty optional fields are omitted.
std::string encode(const Message& message);

// Compact encodings shared with trackers and PEX.
std::string encode_compact_peer(const PeerAddress& peer);                  // 6 or 18 bytes
std::optional<PeerAddress> decode_compact_peer(std::string_view bytes);    // 6 or 18 bytes, else nullopt
std::string encode_compact_nodes(std::span<const NodeInfo> nodes, bool v6);  // only nodes of that family
// Appends the nodes of a compact string; fails (without appending) when the length is not a multiple of 26 / 38.
bool decode_compact_nodes(std::string_view bytes, bool v6, std::vector<NodeInfo>& out);

// Convenience constructors for the node and the tests.
Message make_query(std::string transaction_id, Query q);
Message make_response(std::string transaction_id, Response r);
Message make_error(std::string transaction_id, int code, std::string message);

}  // namespace ph::krpc
