// Peer wire codec implementation: big-endian framing, per-message length checks, and the buffered stream decoder.
#include "net/peer_message.hpp"

#include <algorithm>
#include <cstring>

namespace ph::wire {

namespace {

std::uint32_t read_u32(const std::byte* p) {
  return static_cast<std::uint32_t>(std::to_integer<std::uint8_t>(p[0])) << 24 |
         static_cast<std::uint32_t>(std::to_integer<std::uint8_t>(p[1])) << 16 |
         static_cast<std::uint32_t>(std::to_integer<std::uint8_t>(p[2])) << 8 |
         static_cast<std::uint32_t>(std::to_integer<std::uint8_t>(p[3]));
}

void put_u32(Buffer& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_header(Buffer& out, std::uint32_t body_length, MessageId id) {
  put_u32(out, body_length + 1);
  out.push_back(static_cast<char>(id));
}

void put_bytes(Buffer& out, std::span<const std::byte> b) {
  out.append(reinterpret_cast<const char*>(b.data()), b.size());
}

DecodeStep fail(std::string why) {
  DecodeStep s;
  s.status = DecodeStatus::error;
  s.error = std::move(why);
  return s;
}

DecodeStep need(std::size_t n) {
  DecodeStep s;
  s.status = DecodeStatus::need_more;
  s.need = n;
  return s;
}

// Fixed body sizes (after the id byte); -1 means variable.
long fixed_body_size(std::uint8_t id) {
  switch (static_cast<MessageId>(id)) {
    case MessageId::choke:
    case MessageId::unchoke:
    case MessageId::interested:
    case MessageId::not_interested:
    case MessageId::have_all:
    case MessageId::have_none:
      return 0;
    case MessageId::have:
    case MessageId::suggest:
    case MessageId::allowed_fast:
      return 4;
    case MessageId::request:
    case MessageId::cancel:
    case MessageId::reject:
      return 12;
    case MessageId::port:
      return 2;
    case MessageId::bitfield:
    case MessageId::piece:
    case MessageId::extended:
      return -1;
  }
  return -2;  // unknown id
}

MessageKind kind_of(MessageId id) {
  switch (id) {
    case MessageId::choke: return MessageKind::choke;
    case MessageId::unchoke: return MessageKind::unchoke;
    case MessageId::interested: return MessageKind::interested;
    case MessageId::not_interested: return MessageKind::not_interested;
    case MessageId::have: return MessageKind::have;
    case MessageId::bitfield: return MessageKind::bitfield;
    case MessageId::request: return MessageKind::request;
    case MessageId::piece: return MessageKind::piece;
    case MessageId::cancel: return MessageKind::cancel;
    case MessageId::port: return MessageKind::port;
    case MessageId::suggest: return MessageKind::suggest;
    case MessageId::have_all: return MessageKind::have_all;
    case MessageId::have_none: return MessageKind::have_none;
    case MessageId::reject: return MessageKind::reject;
    case MessageId::allowed_fast: return MessageKind::allowed_fast;
    case MessageId::extended: return MessageKind::extended;
  }
  return MessageKind::keep_alive;
}

}  // namespace

Reserved& Reserved::set_extension_protocol(bool on) {
  bytes[5] = static_cast<std::uint8_t>(on ? bytes[5] | 0x10 : bytes[5] & ~0x10);
  return *this;
}
Reserved& Reserved::set_fast(bool on) {
  bytes[7] = static_cast<std::uint8_t>(on ? bytes[7] | 0x04 : bytes[7] & ~0x04);
  return *this;
}
Reserved& Reserved::set_dht(bool on) {
  bytes[7] = static_cast<std::uint8_t>(on ? bytes[7] | 0x01 : bytes[7] & ~0x01);
  return *this;
}
Reserved Reserved::ours(bool dht) {
  Reserved r;
  r.set_extension_protocol().set_fast().set_dht(dht);
  return r;
}

const char* kind_name(MessageKind k) {
  switch (k) {
    case MessageKind::handshake: return "handshake";
    case MessageKind::keep_alive: return "keep_alive";
    case MessageKind::choke: return "choke";
    case MessageKind::unchoke: return "unchoke";
    case MessageKind::interested: return "interested";
    case MessageKind::not_interested: return "not_interested";
    case MessageKind::have: return "have";
    case MessageKind::bitfield: return "bitfield";
    case MessageKind::request: return "request";
    case MessageKind::piece: return "piece";
    case MessageKind::cancel: return "cancel";
    case MessageKind::port: return "port";
    case MessageKind::suggest: return "suggest";
    case MessageKind::have_all: return "have_all";
    case MessageKind::have_none: return "have_none";
    case MessageKind::reject: return "reject";
    case MessageKind::allowed_fast: return "allowed_fast";
    case MessageKind::extended: return "extended";
  }
  return "unknown";
}

DecodeStep decode_handshake(std::span<const std::byte> in) {
  // Check the protocol string as soon as its bytes arrive, so a non-BitTorrent peer fails fast.
  if (!in.empty() && std::to_integer<std::uint8_t>(in[0]) != kProtocolName.size()) {
    return fail("handshake: protocol name length " + std::to_string(std::to_integer<unsigned>(in[0])) +
                ", expected 19 (\"BitTorrent protocol\")");
  }
  std::size_t check = std::min<std::size_t>(in.size(), 1 + kProtocolName.size());
  if (check > 1 && std::memcmp(in.data() + 1, kProtocolName.data(), check - 1) != 0) {
    return fail("handshake: protocol name is not \"BitTorrent protocol\"");
  }
  if (in.size() < kHandshakeSize) return need(kHandshakeSize);
  DecodeStep s;
  s.status = DecodeStatus::message;
  s.consumed = kHandshakeSize;
  s.message.kind = MessageKind::handshake;
  auto* p = reinterpret_cast<const std::uint8_t*>(in.data());
  std::memcpy(s.message.handshake.reserved.bytes.data(), p + 20, 8);
  std::memcpy(s.message.handshake.info_hash.bytes.data(), p + 28, 20);
  std::memcpy(s.message.handshake.peer_id.bytes.data(), p + 48, 20);
  return s;
}

DecodeStep decode_message(std::span<const std::byte> in, const DecoderLimits& limits, std::uint32_t piece_count) {
  if (in.size() < 4) return need(4);
  const std::uint32_t length = read_u32(in.data());
  if (length == 0) {
    DecodeStep s;
    s.status = DecodeStatus::message;
    s.consumed = 4;
    s.message.kind = MessageKind::keep_alive;
    return s;
  }
  if (in.size() < 5) return need(5);
  const std::uint8_t id = std::to_integer<std::uint8_t>(in[4]);
  const std::uint32_t body = length - 1;
  const long fixed = fixed_body_size(id);
  const auto mid = static_cast<MessageId>(id);

  // Validate the announced length before waiting for the body: caps apply before any buffering.
  if (fixed == -2) {
    // Unknown ids are protocol violations we cannot skip safely without a bound; refuse them with the id.
    return fail("unknown message id " + std::to_string(id) + " (length " + std::to_string(length) + ")");
  }
  if (fixed >= 0 && body != static_cast<std::uint32_t>(fixed)) {
    return fail(std::string(kind_name(kind_of(mid))) + " message has length " + std::to_string(length) +
                ", expected " + std::to_string(fixed + 1));
  }
  if (mid == MessageId::piece) {
    if (body < 8) return fail("piece message of length " + std::to_string(length) + " is shorter than its header");
    if (body - 8 > limits.max_block) {
      return fail("piece message carries a block of " + std::to_string(body - 8) + " bytes, cap is " +
                  std::to_string(limits.max_block));
    }
  } else if (mid == MessageId::bitfield) {
    if (piece_count != 0) {
      const std::uint32_t want = (piece_count + 7) / 8;
      if (body != want) {
        return fail("bitfield of " + std::to_string(body) + " bytes, expected " + std::to_string(want) + " for " +
                    std::to_string(piece_count) + " pieces");
      }
    } else if (body > limits.max_bitfield) {
      return fail("bitfield of " + std::to_string(body) + " bytes exceeds cap " + std::to_string(limits.max_bitfield));
    }
  } else if (mid == MessageId::extended) {
    if (body < 1) return fail("extended message without an extended id");
    if (body - 1 > limits.max_extended) {
      return fail("extended message of " + std::to_string(body - 1) + " bytes exceeds cap " +
                  std::to_string(limits.max_extended));
    }
  }

  const std::size_t total = 4 + static_cast<std::size_t>(length);
  if (in.size() < total) return need(total);

  DecodeStep s;
  s.status = DecodeStatus::message;
  s.consumed = total;
  Message& m = s.message;
  m.kind = kind_of(mid);
  const std::byte* b = in.data() + 5;
  auto check_piece = [&](PieceIndex p) -> bool { return piece_count == 0 || p < piece_count; };
  switch (mid) {
    case MessageId::have:
    case MessageId::suggest:
    case MessageId::allowed_fast:
      m.piece = read_u32(b);
      if (!check_piece(m.piece)) {
        return fail(std::string(kind_name(m.kind)) + " for piece " + std::to_string(m.piece) + " of " +
                    std::to_string(piece_count));
      }
      break;
    case MessageId::request:
    case MessageId::cancel:
    case MessageId::reject:
      m.piece = read_u32(b);
      m.offset = read_u32(b + 4);
      m.length = read_u32(b + 8);
      if (!check_piece(m.piece)) {
        return fail(std::string(kind_name(m.kind)) + " for piece " + std::to_string(m.piece) + " of " +
                    std::to_string(piece_count));
      }
      break;
    case MessageId::piece:
      m.piece = read_u32(b);
      m.offset = read_u32(b + 4);
      m.length = body - 8;
      m.payload = std::span<const std::byte>(b + 8, m.length);
      if (!check_piece(m.piece)) {
        return fail("piece message for piece " + std::to_string(m.piece) + " of " + std::to_string(piece_count));
      }
      break;
    case MessageId::port:
      m.port = static_cast<std::uint16_t>(std::to_integer<std::uint16_t>(b[0]) << 8 | std::to_integer<std::uint16_t>(b[1]));
      break;
    case MessageId::bitfield:
      m.payload = std::span<const std::byte>(b, body);
      if (piece_count != 0 && piece_count % 8 != 0) {
        const auto last = std::to_integer<std::uint8_t>(b[body - 1]);
        const auto spare_mask = static_cast<std::uint8_t>(0xFF >> (piece_count % 8));
        if ((last & spare_mask) != 0) return fail("bitfield has spare bits set past the last piece");
      }
      break;
    case MessageId::extended:
      m.extended_id = std::to_integer<std::uint8_t>(b[0]);
      m.payload = std::span<const std::byte>(b + 1, body - 1);
      break;
    default:
      break;
  }
  return s;
}

MessageDecoder::MessageDecoder(DecoderLimits limits, bool expect_handshake)
    : limits_(limits), expect_handshake_(expect_handshake) {}

std::span<std::byte> MessageDecoder::prepare(std::size_t min_bytes) {
  if (buf_.size() - end_ < min_bytes) {
    // Move unread bytes to the front first; grow only if that is not enough.
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buf_.size() - end_ < min_bytes) buf_.resize(end_ + min_bytes);
  }
  return std::span<std::byte>(buf_.data() + end_, buf_.size() - end_);
}

void MessageDecoder::commit(std::size_t n) { end_ = std::min(buf_.size(), end_ + n); }

void MessageDecoder::feed(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;  // also keeps memcpy away from a null destination when nothing was buffered yet
  auto dst = prepare(bytes.size());
  std::memcpy(dst.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

DecodeStep MessageDecoder::next() {
  if (failed_) return fail(error_);
  if (begin_ == end_) {
    // Reclaim the whole buffer when drained, so a burst of large messages does not pin memory in the middle.
    begin_ = end_ = 0;
    return need(expect_handshake_ ? kHandshakeSize : 4);
  }
  std::span<const std::byte> in(buf_.data() + begin_, end_ - begin_);
  DecodeStep s = expect_handshake_ ? decode_handshake(in) : decode_message(in, limits_, piece_count_);
  if (s.status == DecodeStatus::message) {
    if (expect_handshake_) expect_handshake_ = false;
    begin_ += s.consumed;
    stream_offset_ += s.consumed;
  } else if (s.status == DecodeStatus::error) {
    failed_ = true;
    error_ = "at stream byte " + std::to_string(stream_offset_) + ": " + s.error;
    s.error = error_;
  }
  return s;
}

// ---- encoders -------------------------------------------------------------------------------------------------

void encode_handshake(Buffer& out, const Handshake& h) {
  out.push_back(static_cast<char>(kProtocolName.size()));
  out.append(kProtocolName);
  out.append(reinterpret_cast<const char*>(h.reserved.bytes.data()), 8);
  out.append(h.info_hash.view());
  out.append(h.peer_id.view());
}

void encode_keep_alive(Buffer& out) { put_u32(out, 0); }
void encode_choke(Buffer& out) { put_header(out, 0, MessageId::choke); }
void encode_unchoke(Buffer& out) { put_header(out, 0, MessageId::unchoke); }
void encode_interested(Buffer& out) { put_header(out, 0, MessageId::interested); }
void encode_not_interested(Buffer& out) { put_header(out, 0, MessageId::not_interested); }
void encode_have_all(Buffer& out) { put_header(out, 0, MessageId::have_all); }
void encode_have_none(Buffer& out) { put_header(out, 0, MessageId::have_none); }

void encode_have(Buffer& out, PieceIndex piece) {
  put_header(out, 4, MessageId::have);
  put_u32(out, piece);
}
void encode_suggest(Buffer& out, PieceIndex piece) {
  put_header(out, 4, MessageId::suggest);
  put_u32(out, piece);
}
void encode_allowed_fast(Buffer& out, PieceIndex piece) {
  put_header(out, 4, MessageId::allowed_fast);
  put_u32(out, piece);
}

void encode_bitfield(Buffer& out, std::span<const std::byte> bits) {
  put_header(out, static_cast<std::uint32_t>(bits.size()), MessageId::bitfield);
  put_bytes(out, bits);
}

static void encode_triple(Buffer& out, MessageId id, PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  put_header(out, 12, id);
  put_u32(out, piece);
  put_u32(out, offset);
  put_u32(out, length);
}

void encode_request(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  encode_triple(out, MessageId::request, piece, offset, length);
}
void encode_cancel(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  encode_triple(out, MessageId::cancel, piece, offset, length);
}
void encode_reject(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t length) {
  encode_triple(out, MessageId::reject, piece, offset, length);
}

void encode_piece_header(Buffer& out, PieceIndex piece, std::uint32_t offset, std::uint32_t block_length) {
  put_header(out, 8 + block_length, MessageId::piece);
  put_u32(out, piece);
  put_u32(out, offset);
}

void encode_piece(Buffer& out, PieceIndex piece, std::uint32_t offset, std::span<const std::byte> block) {
  encode_piece_header(out, piece, offset, static_cast<std::uint32_t>(block.size()));
  put_bytes(out, block);
}

void encode_port(Buffer& out, std::uint16_t port) {
  put_header(out, 2, MessageId::port);
  out.push_back(static_cast<char>(port >> 8));
  out.push_back(static_cast<char>(port));
}

void encode_extended(Buffer& out, std::uint8_t extended_id, std::string_view payload) {
  put_header(out, static_cast<std::uint32_t>(1 + payload.size()), MessageId::extended);
  out.push_back(static_cast<char>(extended_id));
  out.append(payload);
}

void encode_message(Buffer& out, const Message& m) {
  switch (m.kind) {
    case MessageKind::handshake: encode_handshake(out, m.handshake); break;
    case MessageKind::keep_alive: encode_keep_alive(out); break;
    case MessageKind::choke: encode_choke(out); break;
    case MessageKind::unchoke: encode_unchoke(out); break;
    case MessageKind::interested: encode_interested(out); break;
    case MessageKind::not_interested: encode_not_interested(out); break;
    case MessageKind::have: encode_have(out, m.piece); break;
    case MessageKind::bitfield: encode_bitfield(out, m.payload); break;
    case MessageKind::request: encode_request(out, m.piece, m.offset, m.length); break;
    case MessageKind::piece: encode_piece(out, m.piece, m.offset, m.payload); break;
    case MessageKind::cancel: encode_cancel(out, m.piece, m.offset, m.length); break;
    case MessageKind::port: encode_port(out, m.port); break;
    case MessageKind::suggest: encode_suggest(out, m.piece); break;
    case MessageKind::have_all: encode_have_all(out); break;
    case MessageKind::have_none: encode_have_none(out); break;
    case MessageKind::reject: encode_reject(out, m.piece, m.offset, m.length); break;
    case MessageKind::allowed_fast: encode_allowed_fast(out, m.piece); break;
    case MessageKind::extended: encode_extended(out, m.extended_id, m.payload_view()); break;
  }
}

}  // namespace ph::wire
