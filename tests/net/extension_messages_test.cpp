// Extension payloads: BEP 10 handshake, BEP 9 ut_metadata and the metadata assembler, BEP 11 ut_pex, lt_donthave.
#include "net/extension_messages.hpp"

#include <catch2/catch.hpp>

#include <string>

#include "net/sha1.hpp"

using namespace ph;
using namespace ph::wire;
using namespace std::string_literals;  // literals below embed NUL bytes

TEST_CASE("extension handshake decodes what libtorrent sends") {
  // The shape libtorrent 2.0 sends (keys sorted), with yourip as 4 raw bytes.
  std::string payload =
      "d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e"
      "6:ut_pexi1ee13:metadata_sizei31235e4:reqqi2000e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01"
      "e"s;
  auto h = parse_extension_handshake(payload);
  REQUIRE(h.ok());
  CHECK(h->id_of(kUtMetadata) == 2);
  CHECK(h->id_of(kUtPex) == 1);
  CHECK(h->id_of(kLtDonthave) == 7);
  CHECK(h->id_of("nonexistent") == 0);
  CHECK(h->metadata_size == 31235u);
  CHECK(h->reqq == 2000u);
  CHECK(h->client == "libtorrent/2.0.8.0");
  REQUIRE(h->yourip.has_value());
  CHECK(h->yourip->to_string().rfind("127.0.0.1", 0) == 0);
  CHECK(h->upload_only == true);
  CHECK(!h->listen_port.has_value());
}

TEST_CASE("extension handshake round-trips and ignores wrongly typed fields") {
  ExtensionHandshake h;
  h.m[std::string(kUtMetadata)] = kOurUtMetadataId;
  h.m[std::string(kUtPex)] = kOurUtPexId;
  h.m[std::string(kLtDonthave)] = kOurLtDonthaveId;
  h.client = "Playhead 0.1";
  h.listen_port = 6881;
  h.reqq = 500;
  h.metadata_size = 12345;
  h.upload_only = false;
  PeerAddress ip;  // ::1, port 0 (yourip carries no port)
  ip.v6 = true;
  ip.ip[15] = 1;
  h.yourip = ip;
  std::string enc = encode_extension_handshake(h);
  CHECK(enc.rfind("d1:md11:lt_donthavei3e11:ut_metadatai2e6:ut_pexi1ee", 0) == 0);
  auto back = parse_extension_handshake(enc);
  REQUIRE(back.ok());
  CHECK(back->m == h.m);
  CHECK(back->client == h.client);
  CHECK(back->listen_port == 6881);
  CHECK(back->reqq == 500u);
  CHECK(back->metadata_size == 12345u);
  CHECK(back->upload_only == false);
  REQUIRE(back->yourip.has_value());
  CHECK(back->yourip->v6);
  CHECK(back->yourip->ip == ip.ip);

  auto odd = parse_extension_handshake("d1:md3:fooi300e3:bar3:xyze1:pi99999e4:reqq3:abc13:metadata_sizei-5ee");
  REQUIRE(odd.ok());
  CHECK(odd->m.empty());
  CHECK(!odd->listen_port);
  CHECK(!odd->reqq);
  CHECK(!odd->metadata_size);

  CHECK(!parse_extension_handshake("li1ee").ok());
  CHECK(!parse_extension_handshake("d1:m").ok());
  CHECK(!parse_extension_handshake("").ok());
}

TEST_CASE("extension handshake bounds the number of extensions") {
  std::string many = "d1:md";
  for (int i = 0; i < 100; ++i) {
    char key[8];
    std::snprintf(key, sizeof key, "x%03d", i);
    many += "4:" + std::string(key) + "i1e";
  }
  many += "ee";
  auto r = parse_extension_handshake(many);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("too many"));
}

TEST_CASE("ut_metadata request, data and reject") {
  CHECK(encode_metadata_request(3) == "d8:msg_typei0e5:piecei3ee");
  CHECK(encode_metadata_reject(1) == "d8:msg_typei2e5:piecei1ee");
  std::string data = encode_metadata_data(0, 5, "hello");
  CHECK(data == "d8:msg_typei1e5:piecei0e10:total_sizei5eehello");

  auto m = parse_metadata_message(data);
  REQUIRE(m.ok());
  CHECK(m->type == MetadataMsgType::data);
  CHECK(m->piece == 0);
  CHECK(m->total_size == 5);
  CHECK(m->data == "hello");
  // The trailing data may itself look like bencode.
  const std::string tricky_payload = encode_metadata_data(0, 6, "d1:ae");  // data views into it: keep it alive
  auto tricky = parse_metadata_message(tricky_payload);
  REQUIRE(tricky.ok());
  CHECK(tricky->data == "d1:ae");

  auto req = parse_metadata_message("d8:msg_typei0e5:piecei3ee");
  REQUIRE(req.ok());
  CHECK(req->type == MetadataMsgType::request);
  CHECK(req->piece == 3);
  auto rej = parse_metadata_message("d8:msg_typei2e5:piecei1ee");
  REQUIRE(rej.ok());
  CHECK(rej->type == MetadataMsgType::reject);

  CHECK(!parse_metadata_message("d8:msg_typei9e5:piecei1ee").ok());
  CHECK(!parse_metadata_message("d5:piecei1ee").ok());
  CHECK(!parse_metadata_message("d8:msg_typei1e5:piecei0ee").ok());  // data without total_size
  CHECK(!parse_metadata_message("d8:msg_typei0e5:piecei-1ee").ok());
  CHECK(!parse_metadata_message("d8:msg_typei0e5:piecei0eextra").ok());
  CHECK(!parse_metadata_message(encode_metadata_data(0, 20000, std::string(16385, 'x'))).ok());
}

TEST_CASE("metadata assembler collects pieces and verifies the info-hash") {
  // An info-like dictionary spanning three 16 KiB metadata pieces.
  const std::string info = "d3:pad" + std::to_string(40000) + ":" + std::string(40000, 'p') + "e";
  InfoHash ih = Id20::from_bytes(Sha1::of(info).view());
  CHECK(metadata_piece_count(info.size()) == 3);

  MetadataAssembler a;
  CHECK(!a.reset(0).ok());
  CHECK(!a.reset(100, 50).ok());
  REQUIRE(a.reset(info.size()).ok());
  CHECK(a.piece_count() == 3);
  CHECK(a.next_missing() == 0u);
  auto piece_msg = [&](std::uint32_t p) {
    MetadataMessage m;
    m.type = MetadataMsgType::data;
    m.piece = p;
    m.total_size = info.size();
    m.data = std::string_view(info).substr(p * kMetadataPieceSize, kMetadataPieceSize);
    return m;
  };
  REQUIRE(a.add(piece_msg(2)).ok());
  CHECK(a.next_missing() == 0u);
  REQUIRE(a.add(piece_msg(0)).ok());
  REQUIRE(a.add(piece_msg(0)).ok());  // repeats are harmless
  CHECK(a.next_missing() == 1u);
  CHECK(!a.complete());
  CHECK(!a.verify(ih).ok());

  MetadataMessage wrong = piece_msg(1);
  wrong.data = wrong.data.substr(1);
  CHECK(!a.add(wrong).ok());
  wrong = piece_msg(1);
  wrong.total_size += 1;
  CHECK(!a.add(wrong).ok());
  wrong = piece_msg(1);
  wrong.piece = 3;
  CHECK(!a.add(wrong).ok());

  REQUIRE(a.add(piece_msg(1)).ok());
  CHECK(a.complete());
  CHECK(!a.next_missing());
  auto ok = a.verify(ih);
  REQUIRE(ok.ok());
  CHECK(*ok == info);

  // A wrong hash discards the pieces so they are fetched again (from someone else).
  InfoHash other = ih;
  other.bytes[0] ^= 1;
  auto bad = a.verify(other);
  REQUIRE(!bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("does not match"));
  CHECK(!a.complete());
  CHECK(a.next_missing() == 0u);
}

TEST_CASE("ut_pex round-trips IPv4 and IPv6 peers with flags") {
  PexMessage m;
  m.added.push_back({*PeerAddress::parse("10.0.0.1:6881"), kPexSeed | kPexReachable});
  m.added.push_back({*PeerAddress::parse("10.0.0.2:51413"), 0});
  m.added.push_back({*PeerAddress::parse("[2001:db8::1]:6881"), kPexUtp});
  m.dropped.push_back(*PeerAddress::parse("192.168.1.9:1"));
  m.dropped.push_back(*PeerAddress::parse("[::1]:2"));
  std::string enc = encode_pex(m);
  CHECK(enc.rfind("d5:added12:\x0a\x00\x00\x01\x1a\xe1"s, 0) == 0);
  auto back = parse_pex(enc);
  REQUIRE(back.ok());
  CHECK(back->added == m.added);
  CHECK(back->dropped == m.dropped);

  // Empty message: the IPv4 keys are present.
  CHECK(encode_pex({}) == "d5:added0:7:added.f0:7:dropped0:e");
  // Missing flags default to 0.
  auto nf = parse_pex("d5:added6:\x01\x02\x03\x04\x00\x50" "e"s);
  REQUIRE(nf.ok());
  REQUIRE(nf->added.size() == 1);
  CHECK(nf->added[0].flags == 0);
  CHECK(nf->added[0].address.port == 80);
}

TEST_CASE("ut_pex rejects bad lengths and bounds counts") {
  CHECK(!parse_pex("d5:added5:abcdee").ok());
  CHECK(!parse_pex("d7:dropped17:" + std::string(17, 'x') + "e").ok());
  PexLimits limits;
  limits.max_added = 2;
  std::string three = "d5:added18:" + std::string(18, '\x01') + "e";
  auto r = parse_pex(three, limits);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Catch::Contains("cap is 2"));
  CHECK(parse_pex(three).ok());
  CHECK(!parse_pex("le").ok());
}

TEST_CASE("lt_donthave carries a 4-byte piece index") {
  CHECK(encode_donthave(0x0a0b0c0d) == "\x0a\x0b\x0c\x0d");
  auto p = parse_donthave(encode_donthave(77));
  REQUIRE(p.ok());
  CHECK(*p == 77u);
  CHECK(!parse_donthave("abc").ok());
  CHECK(!parse_donthave("abcde").ok());
}
