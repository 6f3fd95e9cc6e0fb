// Peer wire codec: golden byte vectors for every message, round trips, any segmentation, and the length caps.
#include "net/peer_message.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

using namespace ph;
using namespace ph::wire;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

std::span<const std::byte> as_span(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

Id20 id_of_char(char c) { return Id20::from_bytes(std::string(20, c)); }

struct Vector {
  const char* name;
  std::string encoded;
  MessageKind kind;
};

std::vector<Vector> golden() {
  std::vector<Vector> v;
  Buffer b;
  encode_keep_alive(b);
  v.push_back({"keep_alive", b, MessageKind::keep_alive});
  b.clear(); encode_choke(b); v.push_back({"choke", b, MessageKind::choke});
  b.clear(); encode_unchoke(b); v.push_back({"unchoke", b, MessageKind::unchoke});
  b.clear(); encode_interested(b); v.push_back({"interested", b, MessageKind::interested});
  b.clear(); encode_not_interested(b); v.push_back({"not_interested", b, MessageKind::not_interested});
  b.clear(); encode_have(b, 0x01020304); v.push_back({"have", b, MessageKind::have});
  b.clear(); encode_bitfield(b, as_span(bytes({0xff, 0x80}))); v.push_back({"bitfield", b, MessageKind::bitfield});
  b.clear(); encode_request(b, 1, 0x4000, 0x4000); v.push_back({"request", b, MessageKind::request});
  b.clear(); encode_piece(b, 2, 0x8000, as_span("abc")); v.push_back({"piece", b, MessageKind::piece});
  b.clear(); encode_cancel(b, 1, 0x4000, 0x4000); v.push_back({"cancel", b, MessageKind::cancel});
  b.clear(); encode_port(b, 6881); v.push_back({"port", b, MessageKind::port});
  b.clear(); encode_suggest(b, 7); v.push_back({"suggest", b, MessageKind::suggest});
  b.clear(); encode_have_all(b); v.push_back({"have_all", b, MessageKind::have_all});
  b.clear(); encode_have_none(b); v.push_back({"have_none", b, MessageKind::have_none});
  b.clear(); encode_reject(b, 3, 0, 0x4000); v.push_back({"reject", b, MessageKind::reject});
  b.clear(); encode_allowed_fast(b, 9); v.push_back({"allowed_fast", b, MessageKind::allowed_fast});
  b.clear(); encode_extended(b, 0, "d1:md6:ut_pexi1eee"); v.push_back({"extended", b, MessageKind::extended});
  return v;
}

}  // namespace

TEST_CASE("peer messages encode to the BEP 3 / BEP 6 / BEP 10 byte layouts") {
  Buffer b;
  encode_keep_alive(b);
  CHECK(b == bytes({0, 0, 0, 0}));
  b.clear(); encode_choke(b); CHECK(b == bytes({0, 0, 0, 1, 0}));
  b.clear(); encode_unchoke(b); CHECK(b == bytes({0, 0, 0, 1, 1}));
  b.clear(); encode_interested(b); CHECK(b == bytes({0, 0, 0, 1, 2}));
  b.clear(); encode_not_interested(b); CHECK(b == bytes({0, 0, 0, 1, 3}));
  b.clear(); encode_have(b, 0x01020304); CHECK(b == bytes({0, 0, 0, 5, 4, 1, 2, 3, 4}));
  b.clear(); encode_bitfield(b, as_span(bytes({0xff, 0x80}))); CHECK(b == bytes({0, 0, 0, 3, 5, 0xff, 0x80}));
  b.clear(); encode_request(b, 1, 0x4000, 0x4000);
  CHECK(b == bytes({0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0}));
  b.clear(); encode_piece(b, 2, 0x8000, as_span("abc"));
  CHECK(b == bytes({0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0x80, 0, 'a', 'b', 'c'}));
  b.clear(); encode_cancel(b, 1, 0x4000, 0x4000);
  CHECK(b == bytes({0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0}));
  b.clear(); encode_port(b, 6881); CHECK(b == bytes({0, 0, 0, 3, 9, 0x1a, 0xe1}));
  b.clear(); encode_suggest(b, 7); CHECK(b == bytes({0, 0, 0, 5, 13, 0, 0, 0, 7}));
  b.clear(); encode_have_all(b); CHECK(b == bytes({0, 0, 0, 1, 14}));
  b.clear(); encode_have_none(b); CHECK(b == bytes({0, 0, 0, 1, 15}));
  b.clear(); encode_reject(b, 3, 0, 0x4000);
  CHECK(b == bytes({0, 0, 0, 13, 16, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0x40, 0}));
  b.clear(); encode_allowed_fast(b, 9); CHECK(b == bytes({0, 0, 0, 5, 17, 0, 0, 0, 9}));
  b.clear(); encode_extended(b, 3, "xy"); CHECK(b == bytes({0, 0, 0, 4, 20, 3, 'x', 'y'}));
  b.clear(); encode_piece_header(b, 2, 0x8000, 3);
  CHECK(b == bytes({0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0x80, 0}));
}

TEST_CASE("handshake encodes to 68 bytes with reserved bits and decodes back") {
  Handshake h;
  h.reserved = Reserved::ours(true);
  h.info_hash = id_of_char('I');
  h.peer_id = id_of_char('P');
  Buffer b;
  encode_handshake(b, h);
  REQUIRE(b.size() == kHandshakeSize);
  CHECK(b[0] == 19);
  CHECK(b.substr(1, 19) == "BitTorrent protocol");
  CHECK(static_cast<std::uint8_t>(b[20 + 5]) == 0x10);
  CHECK(static_cast<std::uint8_t>(b[20 + 7]) == 0x05);
  CHECK(b.substr(28, 20) == std::string(20, 'I'));
  CHECK(b.substr(48, 20) == std::string(20, 'P'));

  DecodeStep s = decode_handshake(as_span(b));
  REQUIRE(s.status == DecodeStatus::message);
  CHECK(s.consumed == 68);
  CHECK(s.message.handshake.reserved.extension_protocol());
  CHECK(s.message.handshake.reserved.fast());
  CHECK(s.message.handshake.reserved.dht());
  CHECK(s.message.handshake.info_hash == h.info_hash);
  CHECK(s.message.handshake.peer_id == h.peer_id);

  Reserved r;
  CHECK(!r.fast());
  r.set_fast().set_fast(false);
  CHECK(!r.fast());
}

TEST_CASE("handshake with a wrong protocol string fails fast") {
  CHECK(decode_handshake(as_span(bytes({18}))).status == DecodeStatus::error);
  std::string bad = "\x13" "BitTorrent protocoX";
  CHECK(decode_handshake(as_span(bad)).status == DecodeStatus::error);
  // A correct prefix only needs more bytes.
  std::string good_prefix = "\x13" "BitTorr";
  DecodeStep s = decode_handshake(as_span(good_prefix));
  CHECK(s.status == DecodeStatus::need_more);
  CHECK(s.need == 68);
  // A plain HTTP request on the peer port is refused at the first byte.
  CHECK(decode_handshake(as_span("GET / HTTP/1.1\r\n")).status == DecodeStatus::error);
}

TEST_CASE("every golden message decodes to its kind and fields and re-encodes byte-identically") {
  for (const auto& v : golden()) {
    INFO(v.name);
    DecodeStep s = decode_message(as_span(v.encoded));
    REQUIRE(s.status == DecodeStatus::message);
    CHECK(s.consumed == v.encoded.size());
    CHECK(s.message.kind == v.kind);
    CHECK(std::string(kind_name(s.message.kind)) == v.name);
    Buffer again;
    encode_message(again, s.message);
    CHECK(again == v.encoded);
  }
  const auto g = golden();  // payload spans point into these strings: keep them alive
  DecodeStep s = decode_message(as_span(g[5].encoded));  // have
  CHECK(s.message.piece == 0x01020304u);
  s = decode_message(as_span(g[7].encoded));  // request
  CHECK(s.message.piece == 1);
  CHECK(s.message.offset == 0x4000);
  CHECK(s.message.length == 0x4000);
  const std::string& piece = g[8].encoded;
  s = decode_message(as_span(piece));
  CHECK(s.message.piece == 2);
  CHECK(s.message.offset == 0x8000);
  CHECK(s.message.length == 3);
  CHECK(s.message.payload_view() == "abc");
  // Zero copy: the block points into the input.
  CHECK(reinterpret_cast<const char*>(s.message.payload.data()) == piece.data() + 13);
  s = decode_message(as_span(g[10].encoded));  // port
  CHECK(s.message.port == 6881);
  s = decode_message(as_span(g[16].encoded));  // extended
  CHECK(s.message.extended_id == 0);
  CHECK(s.message.payload_view() == "d1:md6:ut_pexi1eee");
}

TEST_CASE("the full message stream decodes identically when split at every byte boundary") {
  Handshake h;
  h.reserved = Reserved::ours();
  h.info_hash = id_of_char('a');
  h.peer_id = id_of_char('b');
  Buffer stream;
  encode_handshake(stream, h);
  std::vector<MessageKind> kinds{MessageKind::handshake};
  for (const auto& v : golden()) {
    stream += v.encoded;
    kinds.push_back(v.kind);
  }
  auto run = [&](const std::vector<std::size_t>& cuts) {
    MessageDecoder d;
    std::vector<MessageKind> got;
    std::vector<std::string> payloads;
    std::size_t pos = 0;
    auto drain = [&] {
      for (;;) {
        DecodeStep s = d.next();
        REQUIRE(s.status != DecodeStatus::error);
        if (s.status == DecodeStatus::need_more) break;
        got.push_back(s.message.kind);
        payloads.emplace_back(s.message.payload_view());
      }
    };
    for (std::size_t cut : cuts) {
      d.feed(std::string_view(stream).substr(pos, cut - pos));
      pos = cut;
      drain();
    }
    d.feed(std::string_view(stream).substr(pos));
    drain();
    CHECK(got == kinds);
    CHECK(d.buffered() == 0);
    CHECK(d.stream_offset() == stream.size());
    return payloads;
  };
  const auto reference = run({});
  for (std::size_t cut = 1; cut < stream.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(run({cut}) == reference);
  }
  // Byte at a time.
  std::vector<std::size_t> every;
  for (std::size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  CHECK(run(every) == reference);
  // Two cuts at every pair of positions in a shorter window (covers header/body splits of adjacent messages).
  for (std::size_t a = 60; a < 120; ++a) {
    for (std::size_t b = a + 1; b < 130; ++b) CHECK(run({a, b}) == reference);
  }
}

TEST_CASE("zero-copy receive through prepare/commit") {
  Buffer b;
  encode_piece(b, 4, 0, as_span(std::string(kBlockSize, 'z')));
  MessageDecoder d(DecoderLimits{}, false);
  std::size_t pos = 0;
  int messages = 0;
  while (pos < b.size()) {
    auto span = d.prepare(1000);
    REQUIRE(span.size() >= 1000);
    std::size_t n = std::min(span.size(), b.size() - pos);
    n = std::min<std::size_t>(n, 1000);
    std::memcpy(span.data(), b.data() + pos, n);
    d.commit(n);
    pos += n;
    DecodeStep s = d.next();
    REQUIRE(s.status != DecodeStatus::error);
    if (s.status == DecodeStatus::message) {
      ++messages;
      CHECK(s.message.length == kBlockSize);
      CHECK(s.message.payload_view() == std::string(kBlockSize, 'z'));
    }
  }
  CHECK(messages == 1);
}

TEST_CASE("caps are enforced from the length prefix, before the body arrives") {
  DecoderLimits limits;
  limits.max_block = 16384;
  limits.max_extended = 1000;
  // A piece announcing a 16 KiB + 1 block: refused with only the 5 header bytes in hand.
  std::uint32_t len = 9 + 16385;
  std::string hdr = bytes({0, static_cast<int>(len >> 16 & 0xff), static_cast<int>(len >> 8 & 0xff),
                           static_cast<int>(len & 0xff), 7});
  DecodeStep s = decode_message(as_span(hdr), limits);
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("cap is 16384"));
  // Exactly 16 KiB is fine (needs more bytes).
  len = 9 + 16384;
  hdr = bytes({0, static_cast<int>(len >> 16 & 0xff), static_cast<int>(len >> 8 & 0xff), static_cast<int>(len & 0xff), 7});
  CHECK(decode_message(as_span(hdr), limits).status == DecodeStatus::need_more);

  // Extended over its cap.
  s = decode_message(as_span(bytes({0, 0, 0x10, 0, 20})), limits);
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("extended"));
  // A 4 GiB length prefix.
  s = decode_message(as_span(bytes({0xff, 0xff, 0xff, 0xff, 7})), limits);
  CHECK(s.status == DecodeStatus::error);
  // Fixed-size messages with the wrong length.
  s = decode_message(as_span(bytes({0, 0, 0, 2, 1, 0})));
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("unchoke"));
  CHECK(decode_message(as_span(bytes({0, 0, 0, 4, 4, 0, 0, 0}))).status == DecodeStatus::error);
  CHECK(decode_message(as_span(bytes({0, 0, 0, 1, 7}))).status == DecodeStatus::error);  // piece without header
  CHECK(decode_message(as_span(bytes({0, 0, 0, 1, 20}))).status == DecodeStatus::error);  // extended without id
  // Unknown ids.
  s = decode_message(as_span(bytes({0, 0, 0, 1, 99})));
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("unknown message id 99"));
}

TEST_CASE("a known piece count pins the bitfield size, spare bits and piece indices") {
  // 10 pieces -> 2 bytes, the last 6 bits spare.
  CHECK(decode_message(as_span(bytes({0, 0, 0, 3, 5, 0xff, 0xc0})), {}, 10).status == DecodeStatus::message);
  DecodeStep s = decode_message(as_span(bytes({0, 0, 0, 3, 5, 0xff, 0xe0})), {}, 10);
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("spare bits"));
  s = decode_message(as_span(bytes({0, 0, 0, 4, 5, 0xff, 0xc0, 0})), {}, 10);
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("expected 2"));
  CHECK(decode_message(as_span(bytes({0, 0, 0, 5, 4, 0, 0, 0, 9})), {}, 10).status == DecodeStatus::message);
  CHECK(decode_message(as_span(bytes({0, 0, 0, 5, 4, 0, 0, 0, 10})), {}, 10).status == DecodeStatus::error);
  // Unknown piece count: bounded by max_bitfield.
  DecoderLimits small;
  small.max_bitfield = 2;
  CHECK(decode_message(as_span(bytes({0, 0, 0, 4, 5, 1, 2, 3})), small).status == DecodeStatus::error);
}

TEST_CASE("the stream decoder reports errors with their offset and stays failed") {
  MessageDecoder d(DecoderLimits{}, false);
  Buffer b;
  encode_choke(b);
  b += bytes({0, 0, 0, 1, 99});
  d.feed(b);
  CHECK(d.next().status == DecodeStatus::message);
  DecodeStep s = d.next();
  REQUIRE(s.status == DecodeStatus::error);
  CHECK_THAT(s.error, Catch::Contains("at stream byte 5"));
  Buffer more;
  encode_unchoke(more);
  d.feed(more);
  CHECK(d.next().status == DecodeStatus::error);
}

TEST_CASE("the stream decoder's buffer stays bounded by one message") {
  MessageDecoder d(DecoderLimits{}, false);
  Buffer block;
  encode_piece(block, 0, 0, as_span(std::string(kBlockSize, 'q')));
  for (int i = 0; i < 200; ++i) {
    d.feed(block);
    DecodeStep s = d.next();
    REQUIRE(s.status == DecodeStatus::message);
    CHECK(d.next().status == DecodeStatus::need_more);
  }
  // The internal buffer was reused, not grown per message: prepare() right after a drain offers the same region.
  auto span = d.prepare(1);
  CHECK(span.size() <= block.size() + 1);
}

TEST_CASE("real libtorrent 2.0.8 greeting bytes decode at every split") {
  // Captured by tests/vectors/wire/capture_libtorrent.py: handshake, extension handshake, have_all, unchoke,
  // five allowed_fast, unchoke, for a 7-piece torrent.
  std::ifstream in(std::string(PLAYHEAD_SOURCE_DIR) + "/tests/vectors/wire/libtorrent_seeder_greeting.bin",
                   std::ios::binary);
  REQUIRE(in.good());
  const std::string stream((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(stream.size() == 344);
  using K = MessageKind;
  const std::vector<K> expected{K::handshake, K::extended,     K::have_all,     K::unchoke,      K::allowed_fast,
                                K::allowed_fast, K::allowed_fast, K::allowed_fast, K::allowed_fast, K::unchoke};
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    MessageDecoder d;
    d.set_piece_count(7);
    std::vector<K> got;
    auto drain = [&] {
      for (;;) {
        DecodeStep s = d.next();
        REQUIRE(s.status != DecodeStatus::error);
        if (s.status == DecodeStatus::need_more) return;
        got.push_back(s.message.kind);
        if (s.message.kind == K::handshake) {
          CHECK(s.message.handshake.reserved.extension_protocol());
          CHECK(s.message.handshake.reserved.fast());
          CHECK(s.message.handshake.peer_id.view().substr(0, 8) == "-LT2080-");
        }
        if (s.message.kind == K::extended) {
          CHECK(s.message.extended_id == 0);
          CHECK(s.message.payload_view().find("ut_metadata") != std::string_view::npos);
        }
        if (s.message.kind == K::allowed_fast) CHECK(s.message.piece < 7);
      }
    };
    d.feed(std::string_view(stream).substr(0, cut));
    drain();
    d.feed(std::string_view(stream).substr(cut));
    drain();
    CHECK(got == expected);
  }
}

TEST_CASE("random garbage never crashes the decoder and never grows its buffer past a capped message") {
  std::mt19937 rng(42);
  DecoderLimits limits;
  for (int round = 0; round < 2000; ++round) {
    MessageDecoder d(limits, round % 2 == 0);
    std::string junk(static_cast<std::size_t>(rng() % 300), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    // Half the rounds start with a plausible length prefix so bodies get parsed too.
    if (round % 4 == 1 && junk.size() > 5) {
      junk[0] = junk[1] = 0;
      junk[2] = 0;
      junk[3] = static_cast<char>(rng() % 20);
      junk[4] = static_cast<char>(rng() % 22);
    }
    std::size_t pos = 0;
    while (pos < junk.size()) {
      std::size_t n = 1 + rng() % 17;
      d.feed(std::string_view(junk).substr(pos, n));
      pos += n;
      DecodeStep s;
      do {
        s = d.next();
      } while (s.status == DecodeStatus::message);
      if (s.status == DecodeStatus::error) {
        CHECK(!s.error.empty());
        break;
      }
      CHECK(d.buffered() <= limits.max_extended + 16);
    }
  }
}

TEST_CASE("decode throughput of 16 KiB piece messages", "[.bench]") {
  // Hidden (run with "[.bench]"): prints MiB/s for the stream decoder fed in 64 KiB reads.
  Buffer stream;
  const std::string block(kBlockSize, 'b');
  for (int i = 0; i < 64; ++i) encode_piece(stream, static_cast<PieceIndex>(i), 0, as_span(block));
  MessageDecoder d(DecoderLimits{}, false);
  const int rounds = 2000;
  std::uint64_t bytes_seen = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t pos = 0; pos < stream.size(); pos += 65536) {
      auto chunk = std::string_view(stream).substr(pos, 65536);
      auto dst = d.prepare(chunk.size());
      std::memcpy(dst.data(), chunk.data(), chunk.size());
      d.commit(chunk.size());
      for (DecodeStep s = d.next(); s.status == DecodeStatus::message; s = d.next()) bytes_seen += s.message.length;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mib = static_cast<double>(bytes_seen) / (1 << 20);
  std::printf("decoded %.0f MiB of piece payload in %.3f s: %.0f MiB/s\n", mib, secs, mib / secs);
  CHECK(bytes_seen == std::uint64_t{rounds} * 64 * kBlockSize);
}
