// Peer wire protocol codec (BEP 3, BEP 5 port, BEP 6 fast extension, BEP 10 extended envelope): message encoders
// that append to a byte buffer, and an incremental decoder that accepts any TCP segmentation. Pure: byte spans in,
// messages out; no sockets, no clocks. Every length is capped before any allocation, so a hostile peer cannot make us
// buffer more than one bounded message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/result.hpp"
#include "net/types.hpp"

namespace ph::wire {

inline constexpr std::string_view kProtocolName = "BitTorrent protocol";
inline constexpr std::size_t kHandshakeSize = 68;  // 1 + 19 + 8 reserved + 20 info-hash + 20 peer id

// The 8 reserved handshake bytes; each bit announces an optional protocol.
struct Reserved {
  std::array<std::uint8_t, 8> bytes{};

  bool extension_protocol() const { return (bytes[5] & 0x10) != 0; }  // BEP 10
  bool fast() const { return (bytes[7] & 0x04) != 0; }                // BEP 6
  bool dht() const { return (bytes[7] & 0x01) != 0; }                 // BEP 5
  Reserved& set_extension_protocol(bool on = true);
  Reserved& set_fast(bool on = true);
  Reserved& set_dht(bool on = true);
  // Our default: extension protocol and fast extension (DHT only when the session runs a node).
  static Reserved ours(bool dht = false);
  auto operator<=>(const Reserved&) const = default;
};

struct Handshake {
  Reserved reserved;
  InfoHash info_hash;
  PeerId peer_id;
};

// Wire ids of length-prefixed messages (the byte after the 4-byte length).
enum class MessageId : std::uint8_t {
  choke = 0,
  unchoke = 1,
  interested = 2,
  not_interested = 3,
  have = 4,
  bitfield = 5,
  request = 6,
  piece = 7,
  cancel = 8,
  port = 9,           // BEP 5
  suggest = 13,       // BEP 6 fast extension: 13..17
  have_all = 14,
  have_none = 15,
  reject = 16,
  allowed_fast = 17,
  extended = 20,      // BEP 10
};

// What the decoder produced. handshake and keep_alive have no wire id; the rest mirror MessageId.
enum class MessageKind : std::uint8_t {
  handshake,
  keep_alive,
  choke,
  unchoke,
  interested,
  not_interested,
  have,
  bitfield,
  request,
  piece,
  cancel,
  port,
  suggest,
  have_all,
  have_none,
  reject,
  allowed_fast,
  extended,
};

const char* kind_name(MessageKind k);  // "have_all", "not_interested", ...

// One decoded message. Only the fields of its kind are meaningful. `payload` points into the decoder's buffer and is
// valid until the next call to any non-const MessageDecoder method: copy piece blocks straight out of it.
struct Message {
  MessageKind kind = MessageKind::keep_alive;
  Handshake handshake;            // handshake
  PieceIndex piece = 0;           // have, request, piece, cancel, suggest, reject, allowed_fast
  std::uint32_t offset = 0;       // request, piece, cancel, reject: byte offset within the piece
  std::uint32_t length = 0;       // request, cancel, reject: requested length; piece: payload size
  std::uint16_t port = 0;         // port (DHT port, host order)
  std::uint8_t extended_id = 0;   // extended: 0 = extension handshake, else the id we assigned in our `m`
  std::span<const std::byte> payload;  // bitfield bytes, piece block, extended payload (after the id byte)

  std::string_view payload_view() const {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
  }
};

struct DecoderLimits {
  // Largest block in a piece message. We request 16 KiB, but some old clients send up to 128 KiB blocks when asked.
  std::uint32_t max_block = 128 * 1024;
  // Largest BEP 10 extended message (ut_metadata data is 16 KiB + a small dict; pex is bounded well below this).
  std::uint32_t max_extended = 1 << 20;
  // Largest bitfield before the piece count is known (the piece count, once set, pins the exact size).
  std::uint32_t max_bitfield = 1 << 20;
};

enum class DecodeStatus : std::uint8_t { message, need_more, error };

// Result of one decode step over a byte span.
struct DecodeStep {
  DecodeStatus status = DecodeStatus::need_more;
  Message message;            // status == message
  std::size_t consumed = 0;   // status == message: bytes the message used
  std::size_t need = 0;       // status == need_more: total bytes required from the span's start (0 = unknown)
  std::string error;          // status == error: what was wrong, e.g. "piece message of 2000000 bytes exceeds cap"
};

// Pure single-message decoders. `piece_count` = 0 means unknown (bitfield bounded by limits only).
DecodeStep decode_handshake(std::span<const std::byte> in);
DecodeStep decode_message(std::span<const std::byte> in, const DecoderLimits& limits = {},
                          std::uint32_t piece_count = 0);

// Incremental stream decoder: feed bytes as they arrive (any segmentation), pull messages with next().
// Optionally starts by expecting a 68-byte handshake. Its buffer never grows past one capped message.
class MessageDecoder {
 public:
  explicit MessageDecoder(DecoderLimits limits = {}, bool expect_handshake = true);

  // Once metadata is known, a bitfield must be exactly ceil(piece_count / 8) bytes with zero spare bits, and piece
  // indices in have/request/... must be < piece_count.
  void set_piece_count(std::uint32_t piece_count) { piece_count_ = piece_count; }
  std::uint32_t piece_count() const { return piece_count_; }

  // Zero-copy receive: writable space of at least `min_bytes` (the socket reads into it), then commit what arrived.
  std::span<std::byte> prepare(std::size_t min_bytes);
  void commit(std::size_t n);
  // Copying receive.
  void feed(std::span<const std::byte> bytes);
  void feed(std::string_view bytes) { feed(std::as_bytes(std::span(bytes.data(), bytes.size()))); }

  // Next complete message (status message), need_more, or error (sticky: the stream is unusable afterwards).
  // The error text includes the stream offset of the offending message.
  DecodeStep next();

  std::size_t buffered() const { return end_ - begin_; }
  std::uint64_t stream_offset() const { return stream_offset_; }  // bytes consumed so far

 private:
  DecoderLimits limits_;
  bool expect_handshake_;
  bool failed_ = false;
  std::string error_;
  std::uint32_t piece_count_ = 0;
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t stream_offset_ = 0;
};

// ---- Encoders: each appends one complete message (length prefix included) to `out` --------------------------------

using Buffer = std::string;

void encode_handshake(Buffer& out, const Handshake& h);
void encode_keep_alive(Buffer& out);
void encode_choke(Buffer& out);
void encode_unchoke(Buffer& out);
void encode_interested(Buffer& out);
void encode_not_interested(Buffer& out);
void encode_have(Buffer& out, PieceIndex piece);
void encode_bitfield(Buffer& out, std::span<const std::byte> bits);
void encode_request(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t length);
void encode_piece(Buffer& out, PieceIndex piece, std::uint32_t offset, std::span<const std::byte> block);
// Header only (13 bytes, length includes the block): for scatter/gather sends of a block that lives elsewhere.
void encode_piece_header(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t block_length);
void encode_cancel(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t length);
void encode_port(Buffer& out, std::uint16_t port);
void encode_suggest(Buffer& out, PieceIndex piece);
void encode_have_all(Buffer& out);
void encode_have_none(Buffer& out);
void encode_reject(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t length);
void encode_allowed_fast(Buffer& out, PieceIndex piece);
void encode_extended(Buffer& out, std::uint8_t extended_id, std::string_view payload);

// Encodes a decoded message back to bytes (used by round-trip tests and by tools that replay traffic).
void encode_message(Buffer& out, const Message& m);

}  // namespace ph::wire
