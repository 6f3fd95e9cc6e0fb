#include "net/bencode.hpp"

#include <catch2/catch.hpp>

using namespace ph::bencode;

TEST_CASE("bencode decodes scalars and containers") {
  auto doc = decode("d3:bar4:spam3:fooi42e4:listli1ei-2e0:ee");
  REQUIRE(doc.ok());
  Node root = doc->root();
  REQUIRE(root.is_dict());
  CHECK(root.size() == 3);
  CHECK(root.find_string("bar") == "spam");
  CHECK(root.find_int("foo") == 42);
  Node l = root.find_list("list");
  REQUIRE(l.size() == 3);
  CHECK(l.at(0).as_int() == 1);
  CHECK(l.at(1).as_int() == -2);
  CHECK(l.at(2).as_string().empty());
  CHECK(l.raw() == "li1ei-2e0:e");
  CHECK(!root.find("missing"));
  CHECK(!root.find("missing").find("deeper"));
}

TEST_CASE("bencode rejects malformed input with offsets") {
  struct Case {
    const char* input;
    std::size_t offset;
  };
  const Case cases[] = {
      {"i01e", 1}, {"i-0e", 0}, {"i-e", 2}, {"ie", 1}, {"i12", 3}, {"i9223372036854775808e", 0},
      {"i-9223372036854775809e", 0}, {"5:abc", 0}, {"03:abc", 0}, {"3abc", 1}, {"l", 1}, {"d1:a", 4},
      {"d1:b1:x1:a1:ye", 7}, {"d1:a1:x1:a1:ye", 7}, {"di1e1:xe", 1}, {"i1ei2e", 3}, {"x", 0}, {"", 0}, {"e", 0},
      {"d1:ae", 4},
  };
  for (const auto& c : cases) {
    DecodeError err;
    auto doc = decode(c.input, {}, &err);
    INFO(c.input << " -> " << (doc.ok() ? "ok" : doc.error().message));
    CHECK_FALSE(doc.ok());
    CHECK(err.offset == c.offset);
  }
}

TEST_CASE("bencode accepts extreme integers") {
  CHECK(decode("i9223372036854775807e")->root().as_int() == INT64_MAX);
  CHECK(decode("i-9223372036854775808e")->root().as_int() == INT64_MIN);
  CHECK(decode("i0e")->root().as_int() == 0);
}

TEST_CASE("bencode bounds nesting depth without recursion") {
  std::string deep(100000, 'l');
  deep += std::string(100000, 'e');
  auto doc = decode(deep);
  REQUIRE_FALSE(doc.ok());
  CHECK(doc.error().message.find("nesting") != std::string::npos);
  DecodeLimits generous;
  generous.max_depth = 200000;
  CHECK(decode(deep, generous).ok());
}

TEST_CASE("bencode unsorted keys are accepted only when asked") {
  DecodeLimits lenient;
  lenient.require_sorted_keys = false;
  CHECK_FALSE(decode("d1:b0:1:a0:e").ok());
  CHECK(decode("d1:b0:1:a0:e", lenient).ok());
}

TEST_CASE("bencode round trips through Value") {
  const std::string input = "d4:infod6:lengthi5e4:name3:abce4:listl1:xi-7eee";
  auto doc = decode(input);
  REQUIRE(doc.ok());
  CHECK(Value::from(doc->root()).encode() == input);
  CHECK(doc->root().find("info").raw() == "d6:lengthi5e4:name3:abce");
  Value::Dict d;
  d["z"] = 1;
  d["a"] = Value::List{Value("s"), Value(2)};
  CHECK(Value(d).encode() == "d1:al1:si2ee1:zi1ee");
}

TEST_CASE("bencode decode_prefix reports consumed bytes") {
  std::size_t used = 0;
  auto doc = decode_prefix("d8:msg_typei1ee<payload>", &used);
  REQUIRE(doc.ok());
  CHECK(used == 15);
}
