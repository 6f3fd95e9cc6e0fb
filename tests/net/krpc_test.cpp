// KRPC codec: BEP 5 byte vectors for every query and response, round trips, and rejection of malformed input.
#include "net/krpc.hpp"

#include <catch2/catch.hpp>

using namespace ph;
using namespace ph::krpc;
using namespace std::string_literals;

namespace {

Id20 id_of(std::string_view twenty) { return Id20::from_bytes(twenty); }

// Decodes, checks the message re-encodes to exactly the same bytes, and returns it.
Message round_trip(std::string_view bytes) {
  auto m = decode(bytes);
  INFO(bytes << " -> " << (m.ok() ? "ok" : m.error().message));
  REQUIRE(m.ok());
  CHECK(encode(*m) == bytes);
  return *m;
}

}  // namespace

TEST_CASE("krpc ping query and response (BEP 5 vectors)") {
  auto q = round_trip("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe");
  REQUIRE(q.is_query());
  CHECK(q.transaction_id == "aa");
  CHECK(q.query().method == Method::ping);
  CHECK(q.query().id == id_of("abcdefghij0123456789"));

  auto r = round_trip("d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re");
  REQUIRE(r.is_response());
  CHECK(r.response().id == id_of("mnopqrstuvwxyz123456"));
  CHECK(r.response().nodes.empty());
  CHECK_FALSE(r.response().token);
}

TEST_CASE("krpc find_node query and response with compact node info") {
  auto q = round_trip("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe");
  CHECK(q.query().method == Method::find_node);
  CHECK(q.query().target == id_of("mnopqrstuvwxyz123456"));

  // Two nodes: 26 bytes each (id, IPv4, port big-endian).
  std::string nodes = "AAAAAAAAAAAAAAAAAAAA"s + "\x7f\x00\x00\x01"s + "\x1a\xe1"s +
                      "BBBBBBBBBBBBBBBBBBBB"s + "\x0a\x00\x00\x02"s + "\x00\x50"s;
  std::string bytes = "d1:rd2:id20:0123456789abcdefghij5:nodes52:" + nodes + "e1:t2:aa1:y1:re";
  auto r = round_trip(bytes);
  REQUIRE(r.response().nodes.size() == 2);
  CHECK(r.response().nodes[0].id == id_of("AAAAAAAAAAAAAAAAAAAA"));
  CHECK(r.response().nodes[0].address.to_string() == "127.0.0.1:6881");
  CHECK(r.response().nodes[1].address.to_string() == "10.0.0.2:80");
}

TEST_CASE("krpc get_peers query and both kinds of response") {
  auto q = round_trip("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe");
  CHECK(q.query().method == Method::get_peers);
  CHECK(q.query().target == id_of("mnopqrstuvwxyz123456"));

  auto values = round_trip("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re");
  REQUIRE(values.response().token);
  CHECK(*values.response().token == "aoeusnth");
  REQUIRE(values.response().values.size() == 2);
  CHECK(values.response().values[0].to_string() == "97.120.106.101:11893");
  CHECK(values.response().values[1].to_string() == "105.100.104.116:28269");

  std::string node = "CCCCCCCCCCCCCCCCCCCC"s + "\x01\x02\x03\x04"s + "\x00\x01"s;
  auto nodes = round_trip("d1:rd2:id20:abcdefghij01234567895:nodes26:" + node + "5:token8:aoeusnthe1:t2:aa1:y1:re");
  REQUIRE(nodes.response().nodes.size() == 1);
  CHECK(nodes.response().nodes[0].address.to_string() == "1.2.3.4:1");
}

TEST_CASE("krpc announce_peer with and without implied_port") {
  auto q = round_trip(
      "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e"
      "5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe");
  CHECK(q.query().method == Method::announce_peer);
  CHECK(q.query().implied_port);
  CHECK(q.query().port == 6881);
  CHECK(q.query().token == "aoeusnth");
  CHECK(q.query().target == id_of("mnopqrstuvwxyz123456"));

  auto q2 = round_trip(
      "d1:ad2:id20:abcdefghij012345678912:implied_porti0e9:info_hash20:mnopqrstuvwxyz1234564:porti51413e"
      "5:token4:abcde1:q13:announce_peer1:t2:xy1:y1:qe");
  CHECK_FALSE(q2.query().implied_port);
  CHECK(q2.query().port == 51413);

  // implied_port lets port be 0 or absent; without it a port is required.
  CHECK(decode("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz123456"
               "5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe")
            .ok());
  DecodeFailure f;
  CHECK_FALSE(decode("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe"
                     "1:q13:announce_peer1:t2:aa1:y1:qe",
                     {}, &f)
                  .ok());
  CHECK(f.reply_expected);
  CHECK(f.code == protocol_error);
  CHECK(f.transaction_id == "aa");
}

TEST_CASE("krpc errors 201-204 round trip") {
  auto e = round_trip("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee");
  REQUIRE(e.is_error());
  CHECK(e.error().code == 201);
  CHECK(e.error().message == "A Generic Error Ocurred");
  for (int code : {201, 202, 203, 204}) {
    auto m = make_error("t1", code, "msg");
    auto back = decode(encode(m));
    REQUIRE(back.ok());
    CHECK(back->error().code == code);
  }
  // libtorrent sends both 'e' and 'r' in errors; 'y' decides.
  auto lt = decode("d1:eli203e9:bad tokene1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:ee");
  REQUIRE(lt.ok());
  CHECK(lt->is_error());
  CHECK(lt->error().code == 203);
}

TEST_CASE("krpc extra fields: ip, v, nodes6, want, ro, unsorted keys") {
  Response r;
  r.id = id_of("abcdefghij0123456789");
  r.nodes6.push_back({id_of("DDDDDDDDDDDDDDDDDDDD"), *PeerAddress::parse("[::1]:6881")});
  r.values.push_back(*PeerAddress::parse("[2001:db8::1]:51413"));
  r.token = "tok";
  auto m = make_response("zz", r);
  m.your_ip = PeerAddress::parse("192.0.2.7:1234");
  m.version = std::string("PH\x00\x01", 4);
  auto back = decode(encode(m));
  REQUIRE(back.ok());
  CHECK(back->your_ip == m.your_ip);
  CHECK(back->version == m.version);
  REQUIRE(back->response().nodes6.size() == 1);
  CHECK(back->response().nodes6[0] == r.nodes6[0]);
  CHECK(back->response().values == r.values);

  Query q;
  q.method = Method::find_node;
  q.id = id_of("abcdefghij0123456789");
  q.target = id_of("mnopqrstuvwxyz123456");
  q.read_only = true;
  q.want_v4 = q.want_v6 = true;
  auto qb = decode(encode(make_query("q1", q)));
  REQUIRE(qb.ok());
  CHECK(qb->query().read_only);
  CHECK(qb->query().want_v4);
  CHECK(qb->query().want_v6);

  // 'y' before 't' (unsorted) is still understood.
  CHECK(decode("d1:y1:q1:t2:aa1:q4:ping1:ad2:id20:abcdefghij0123456789ee").ok());
}

TEST_CASE("krpc rejects malformed and hostile input") {
  struct Case {
    std::string bytes;
    bool reply_expected;
    int code;
  };
  const std::string id = "2:id20:abcdefghij0123456789";
  const Case cases[] = {
      {"", false, 0},
      {"garbage", false, 0},
      {"le", false, 0},
      {"d1:t2:aae", false, 0},                                                      // no y
      {"d1:ad" + id + "e1:q4:ping1:y1:qe", false, 0},                                 // no t
      {"d1:ad" + id + "e1:q4:ping1:ti5e1:y1:qe", false, 0},                            // t not a string
      {"d1:ad" + id + "e1:q4:ping1:t40:0123456789012345678901234567890123456789" "1:y1:qe", false, 0},
      {"d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", true, 203},                           // id wrong type
      {"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", true, 203},                         // id wrong length
      {"d1:al" "e1:q4:ping1:t2:aa1:y1:qe", true, 203},                               // a is a list
      {"d1:ad" + id + "e1:qi1e1:t2:aa1:y1:qe", true, 203},                            // q not a string
      {"d1:ad" + id + "e1:q4:vote1:t2:aa1:y1:qe", true, 204},                         // unknown method
      {"d1:ad" + id + "e1:q9:find_node1:t2:aa1:y1:qe", true, 203},                    // no target
      {"d1:ad" + id + "6:target3:abce1:q9:find_node1:t2:aa1:y1:qe", true, 203},       // short target
      {"d1:ad" + id + "e1:q9:get_peers1:t2:aa1:y1:qe", true, 203},                    // no info_hash
      {"d1:ad" + id + "9:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
       true, 203},                                                                    // port out of range
      {"d1:ad" + id + "9:info_hash20:mnopqrstuvwxyz1234564:porti1e5:tokeni1ee1:q13:announce_peer1:t2:aa1:y1:qe",
       true, 203},                                                                    // token wrong type
      {"d1:rd2:id3:abce1:t2:aa1:y1:re", false, 0},                                    // response id short
      {"d1:rd" + id + "5:nodes5:abcdee1:t2:aa1:y1:re", false, 0},                     // nodes not 26*n
      {"d1:rd" + id + "5:nodesi1ee1:t2:aa1:y1:re", false, 0},                         // nodes wrong type
      {"d1:rd" + id + "6:values3:abce1:t2:aa1:y1:re", false, 0},                      // values not a list
      {"d1:rd" + id + "5:tokeni1ee1:t2:aa1:y1:re", false, 0},                         // token wrong type
      {"d1:r0:1:t2:aa1:y1:re", false, 0},                                             // r not a dict
      {"d1:e0:1:t2:aa1:y1:ee", false, 0},                                             // e not a list
      {"d1:t2:aa1:y1:xe", false, 0},                                                  // unknown y
  };
  for (const auto& c : cases) {
    DecodeFailure f;
    auto m = decode(c.bytes, {}, &f);
    INFO(c.bytes << " -> " << (m.ok() ? "ok" : m.error().message));
    CHECK_FALSE(m.ok());
    CHECK(f.reply_expected == c.reply_expected);
    if (c.reply_expected) {
      CHECK(f.code == c.code);
      CHECK(f.transaction_id == "aa");
    }
  }
}

TEST_CASE("krpc bounds: oversized datagrams, deep nesting, too many tokens, bad values skipped") {
  std::string big = "d1:rd2:id20:abcdefghij01234567895:nodes" + std::to_string(26 * 200) + ":" +
                    std::string(26 * 200, 'x') + "e1:t2:aa1:y1:re";
  Limits small;
  DecodeFailure f;
  CHECK_FALSE(decode(big, small, &f).ok());
  CHECK(f.message.find("exceeds") != std::string::npos);
  Limits large;
  large.max_datagram = 1 << 20;
  auto ok = decode(big, large);
  REQUIRE(ok.ok());
  CHECK(ok->response().nodes.size() == 200);

  std::string deep = "d1:ad2:id20:abcdefghij01234567891:x" + std::string(50, 'l') + std::string(50, 'e') +
                     "e1:q4:ping1:t2:aa1:y1:qe";
  CHECK_FALSE(decode(deep).ok());

  std::string many = "d1:ad2:id20:abcdefghij01234567891:xl";
  for (int i = 0; i < 2000; ++i) many += "i1e";
  many += "ee1:q4:ping1:t2:aa1:y1:qe";
  CHECK_FALSE(decode(many).ok());

  // A value of the wrong length is skipped; the good one survives.
  auto v = decode("d1:rd2:id20:abcdefghij01234567896:valuesl3:abc6:axje.ui5eee1:t2:aa1:y1:re");
  REQUIRE(v.ok());
  REQUIRE(v->response().values.size() == 1);
  CHECK(v->response().values[0].to_string() == "97.120.106.101:11893");
}

TEST_CASE("krpc compact peers and nodes") {
  auto p4 = *PeerAddress::parse("1.2.3.4:513");
  CHECK(encode_compact_peer(p4) == std::string("\x01\x02\x03\x04\x02\x01", 6));
  CHECK(decode_compact_peer(encode_compact_peer(p4)) == p4);
  auto p6 = *PeerAddress::parse("[2001:db8::2]:6881");
  CHECK(encode_compact_peer(p6).size() == 18);
  CHECK(decode_compact_peer(encode_compact_peer(p6)) == p6);
  CHECK_FALSE(decode_compact_peer("12345"));

  std::vector<NodeInfo> nodes = {{id_of("AAAAAAAAAAAAAAAAAAAA"), p4}, {id_of("BBBBBBBBBBBBBBBBBBBB"), p6}};
  CHECK(encode_compact_nodes(nodes, false).size() == 26);  // only the IPv4 one
  CHECK(encode_compact_nodes(nodes, true).size() == 38);
  std::vector<NodeInfo> back;
  CHECK(decode_compact_nodes(encode_compact_nodes(nodes, false), false, back));
  REQUIRE(back.size() == 1);
  CHECK(back[0] == nodes[0]);
  CHECK_FALSE(decode_compact_nodes("x", false, back));
  CHECK(back.size() == 1);
}

TEST_CASE("krpc survives every truncation and single-byte mutation of valid messages") {
  const std::string vectors[] = {
      "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
      "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
      "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e"
      "5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
      "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
      "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
  };
  std::size_t decoded = 0;
  for (const auto& v : vectors) {
    for (std::size_t cut = 0; cut < v.size(); ++cut) CHECK_FALSE(decode(v.substr(0, cut)).ok());
    for (std::size_t at = 0; at < v.size(); ++at) {
      for (char c : {'\0', 'e', 'i', 'l', 'd', '0', '9', ':', '\xff'}) {
        std::string m = v;
        m[at] = c;
        auto r = decode(m);
        if (!r.ok()) continue;
        ++decoded;
        // Whatever decodes must re-encode to something that decodes to the same message kind and fields.
        auto again = decode(encode(*r));
        REQUIRE(again.ok());
        CHECK(again->body.index() == r->body.index());
        CHECK(again->transaction_id == r->transaction_id);
      }
    }
  }
  CHECK(decoded > 0);
}
