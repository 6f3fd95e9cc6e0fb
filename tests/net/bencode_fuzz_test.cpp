// Robustness of the codecs owned by the foundation: the optimised bencode decoder against a small reference
// decoder on random documents, and random mutations (flips, truncations, splices) of valid torrents and magnet
// links through every parser: each input must give a value or a clean error, never a crash (run under ASan/UBSan).
#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "net/bencode.hpp"
#include "net/magnet.hpp"
#include "net/metainfo.hpp"

using namespace ph;
using bencode::Value;

namespace {

Value random_value(std::mt19937& rng, int depth) {
  const int kind = depth > 4 ? static_cast<int>(rng() % 2) : static_cast<int>(rng() % 4);
  switch (kind) {
    case 0: return Value(static_cast<std::int64_t>(rng()) - static_cast<std::int64_t>(rng()) * 3);
    case 1: {
      std::string s(rng() % 12, '\0');
      for (auto& c : s) c = static_cast<char>(rng());
      return Value(std::move(s));
    }
    case 2: {
      Value::List l;
      for (unsigned i = rng() % 5; i > 0; --i) l.push_back(random_value(rng, depth + 1));
      return Value(std::move(l));
    }
    default: {
      Value::Dict d;
      for (unsigned i = rng() % 5; i > 0; --i) d["k" + std::to_string(rng() % 50)] = random_value(rng, depth + 1);
      return Value(std::move(d));
    }
  }
}

// The decoded tree must re-encode to exactly the input (keys are sorted by Value, so this holds for valid input).
void check_same(const bencode::Node& n, const Value& v) {
  if (auto* i = std::get_if<std::int64_t>(&v.v)) {
    REQUIRE(n.is_int());
    CHECK(n.as_int() == *i);
  } else if (auto* s = std::get_if<std::string>(&v.v)) {
    REQUIRE(n.is_string());
    CHECK(n.as_string() == *s);
  } else if (auto* l = std::get_if<Value::List>(&v.v)) {
    REQUIRE(n.is_list());
    REQUIRE(n.size() == l->size());
    std::size_t k = 0;
    for (auto e : n.list()) check_same(e, (*l)[k++]);
  } else if (auto* d = std::get_if<Value::Dict>(&v.v)) {
    REQUIRE(n.is_dict());
    REQUIRE(n.size() == d->size());
    auto it = d->begin();
    for (auto [key, val] : n.dict()) {
      CHECK(key == it->first);
      CHECK(val.raw() == it->second.encode());
      check_same(val, it->second);
      ++it;
    }
  }
}

std::string sample_torrent() {
  Value::Dict info;
  info["name"] = "dir";
  info["piece length"] = 16384;
  Value::Dict a;
  a["length"] = 20000;
  a["path"] = Value::List{"a", "b.mkv"};
  Value::Dict b;
  b["length"] = 5;
  b["path"] = Value::List{"c"};
  b["attr"] = "x";
  info["files"] = Value::List{Value(a), Value(b)};
  info["pieces"] = std::string(40, 'p');
  Value::Dict root;
  root["announce"] = "http://t/a";
  root["announce-list"] = Value::List{Value::List{"http://t/a"}};
  root["url-list"] = Value::List{"http://w/"};
  root["info"] = Value(info);
  return Value(root).encode();
}

}  // namespace

TEST_CASE("bencode decoder agrees with the encoder on random documents") {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    const Value v = random_value(rng, 0);
    const std::string bytes = v.encode();
    auto doc = bencode::decode(bytes);
    INFO(bytes);
    REQUIRE(doc.ok());
    CHECK(doc->root().raw() == bytes);
    check_same(doc->root(), v);
    // Every strict prefix is an error (a complete value never ends early), and so is any trailing byte.
    const std::size_t cut = rng() % bytes.size();
    CHECK_FALSE(bencode::decode(std::string_view(bytes).substr(0, cut)).ok());
    CHECK_FALSE(bencode::decode(bytes + "x").ok());
  }
}

TEST_CASE("random mutations of a torrent never crash the parsers") {
  const std::string good = sample_torrent();
  REQUIRE(parse_metainfo(good).ok());
  std::mt19937 rng(11);
  int parsed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string m = good;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % m.size();
      switch (rng() % 4) {
        case 0: m[at] = static_cast<char>(rng()); break;              // overwrite a byte
        case 1: m.erase(at, 1 + rng() % 8); break;                    // delete a run
        case 2: m.insert(at, 1, "0123456789ilde:-"[rng() % 16]); break;  // insert a syntax byte
        default: m.resize(at); break;                                 // truncate
      }
      if (m.empty()) m = "d";
    }
    auto r = parse_metainfo(m);
    if (r.ok()) {
      ++parsed;
      // Anything accepted is internally consistent.
      CHECK(r->piece_count() == (r->total_length + r->piece_length - 1) / r->piece_length);
      for (const auto& f : r->files) {
        for (const auto& c : f.path) {
          CHECK_FALSE(c.empty());
          CHECK(c != "..");
          CHECK(c.find('/') == std::string::npos);
        }
      }
    } else {
      CHECK_FALSE(r.error().message.empty());
    }
    (void)parse_info_dict(m);
    auto doc = bencode::decode(m, {}, nullptr);
    if (doc) (void)bencode::to_debug_string(doc->root());
  }
  CHECK(parsed > 0);  // some mutations (inside strings) stay valid: the check above was exercised
}

TEST_CASE("random mutations of a magnet link never crash the parser") {
  const std::string good =
      "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=a%20b&tr=http%3A%2F%2Ft&x.pe=1.2.3.4:5&so=1,3-4";
  REQUIRE(parse_magnet(good).ok());
  std::mt19937 rng(13);
  for (int round = 0; round < 20000; ++round) {
    std::string m = good;
    const std::size_t at = rng() % m.size();
    if (rng() % 2) {
      m[at] = "%&=:,-0aZ\0"[rng() % 10];
    } else {
      m.resize(at);
    }
    auto r = parse_magnet(m);
    if (r.ok()) {
      CHECK(parse_magnet(to_magnet_uri(*r)).ok());
    } else {
      CHECK(r.error().message.rfind("magnet: ", 0) == 0);
    }
  }
}

TEST_CASE("to_debug_string caps its recursion even for generously decoded input") {
  std::string deep(5000, 'l');
  deep += std::string(5000, 'e');
  bencode::DecodeLimits generous;
  generous.max_depth = 10000;
  auto doc = bencode::decode(deep, generous);
  REQUIRE(doc.ok());
  const std::string shown = bencode::to_debug_string(doc->root());
  CHECK(shown.find("[...]") != std::string::npos);
  CHECK(shown.size() < 100000);
}
