// libFuzzer target: the incremental peer-wire decoder under arbitrary segmentation. The first bytes choose the piece
// count and the cut points; the rest is the stream. The same stream is decoded in one piece and in fragments, and
// both must yield the same messages (kind, piece, offset, length) and the same final status.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "net/peer_message.hpp"

namespace {

struct Seen {
  int kind;
  std::uint32_t piece, offset, length;
  std::size_t payload;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> drain(ph::wire::MessageDecoder& d, bool& failed) {
  std::vector<Seen> out;
  for (;;) {
    auto step = d.next();
    if (step.status == ph::wire::DecodeStatus::error) {
      failed = true;
      return out;
    }
    if (step.status == ph::wire::DecodeStatus::need_more) return out;
    const auto& m = step.message;
    out.push_back({static_cast<int>(m.kind), m.piece, m.offset, m.length, m.payload.size()});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::uint32_t piece_count = data[0] | (data[1] << 8);  // 0 = unknown
  const bool handshake = data[2] & 1;
  const std::uint8_t seed = data[3];
  const auto stream = std::as_bytes(std::span(data + 4, size - 4));
  ph::wire::DecoderLimits limits;
  limits.max_extended = 64 * 1024;  // keep single inputs cheap; the caps are what is under test

  ph::wire::MessageDecoder whole(limits, handshake);
  whole.set_piece_count(piece_count);
  whole.feed(stream);
  bool whole_failed = false;
  auto a = drain(whole, whole_failed);

  ph::wire::MessageDecoder parts(limits, handshake);
  parts.set_piece_count(piece_count);
  bool parts_failed = false;
  std::vector<Seen> b;
  std::size_t pos = 0;
  std::uint32_t rng = seed * 2654435761u + 1;
  while (pos < stream.size() && !parts_failed) {
    rng = rng * 1103515245u + 12345u;
    std::size_t n = 1 + (rng >> 16) % 37;
    if (n > stream.size() - pos) n = stream.size() - pos;
    if (rng & 0x100) {  // alternate between the zero-copy and the copying receive paths
      auto space = parts.prepare(n);
      std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(pos), n, space.begin());
      parts.commit(n);
    } else {
      parts.feed(stream.subspan(pos, n));
    }
    pos += n;
    auto got = drain(parts, parts_failed);
    b.insert(b.end(), got.begin(), got.end());
    if (parts.buffered() > (1u << 20) + 64) __builtin_trap();  // the buffer never outgrows one capped message
  }
  if (!parts_failed && whole_failed != parts_failed) __builtin_trap();
  if (!whole_failed && !parts_failed && a != b) __builtin_trap();
  return 0;
}
