// Metainfo parsing: geometry, trackers, padding files, path sanitation, BEP 52 refusal, round trip of the file.
#include "net/metainfo.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "net/bencode.hpp"

using namespace ph;
using bencode::Value;

namespace {

std::string hashes(std::size_t pieces) { return std::string(pieces * 20, 'h'); }

Value::Dict single_info(std::int64_t length = 40000, std::int64_t piece_length = 16384) {
  Value::Dict info;
  info["name"] = "movie.mp4";
  info["length"] = length;
  info["piece length"] = piece_length;
  info["pieces"] = hashes(static_cast<std::size_t>((length + piece_length - 1) / piece_length));
  return info;
}

Value file(std::int64_t length, Value::List path, std::string attr = "") {
  Value::Dict f;
  f["length"] = length;
  f["path"] = std::move(path);
  if (!attr.empty()) f["attr"] = attr;
  return Value(std::move(f));
}

std::string torrent(Value::Dict info, Value::Dict extra = {}) {
  extra["info"] = Value(std::move(info));
  return Value(std::move(extra)).encode();
}

std::string error_of(const std::string& bytes) {
  auto m = parse_metainfo(bytes);
  return m.ok() ? std::string("(parsed)") : m.error().message;
}

}  // namespace

TEST_CASE("metainfo parses a single-file torrent and hashes the raw info bytes") {
  const std::string info_bytes = Value(single_info()).encode();
  Value::Dict root;
  root["announce"] = "http://t.example/announce";
  root["comment"] = "hello";
  root["created by"] = "test";
  root["creation date"] = 1700000000;
  root["url-list"] = "http://ws.example/movie.mp4";
  const std::string bytes = torrent(single_info(), root);
  auto m = parse_metainfo(bytes);
  REQUIRE(m.ok());
  CHECK(m->info_hash.hex() == Sha1::of(info_bytes).hex());
  CHECK(m->info_bytes == info_bytes);
  CHECK(m->name == "movie.mp4");
  CHECK_FALSE(m->multi_file);
  CHECK(m->total_length == 40000);
  CHECK(m->piece_length == 16384);
  CHECK(m->piece_count() == 3);
  CHECK(m->piece_size(0) == 16384);
  CHECK(m->piece_size(2) == 40000 - 2 * 16384);
  CHECK(m->piece_size(3) == 0);
  REQUIRE(m->files.size() == 1);
  CHECK(m->files[0].path_string() == "movie.mp4");
  CHECK(m->trackers == std::vector<std::vector<std::string>>{{"http://t.example/announce"}});
  CHECK(m->web_seeds == std::vector<std::string>{"http://ws.example/movie.mp4"});
  CHECK(m->comment == "hello");
  CHECK(m->created_by == "test");
  CHECK(m->creation_date == 1700000000);
  CHECK(m->piece_hash(1).view() == std::string(20, 'h'));
}

TEST_CASE("metainfo keeps the raw info bytes even when keys are unsorted") {
  // Info dict with keys out of order: a re-encoding would change the hash, the raw bytes must not.
  const std::string info = "d6:lengthi20000e4:name1:a6:pieces40:" + std::string(40, 'x') + "12:piece lengthi16384ee";
  const std::string bytes = "d4:info" + info + "e";
  auto m = parse_metainfo(bytes);
  REQUIRE(m.ok());
  CHECK(m->info_hash.hex() == Sha1::of(info).hex());
  MetainfoLimits strict;
  strict.require_sorted_keys = true;
  CHECK_FALSE(parse_metainfo(bytes, strict).ok());
}

TEST_CASE("metainfo parses multi-file torrents with padding files and offsets") {
  Value::Dict info;
  info["name"] = "Show";
  info["piece length"] = 16384;
  info["files"] = Value::List{
      file(10000, {"s01", "e01.mkv"}, "x"),
      file(16384 - 10000, {".pad", "6384"}, "p"),
      file(20000, {"s01", "e02.mkv"}),
      file(0, {"empty.txt"}, "h"),
  };
  info["pieces"] = hashes(3);
  info["private"] = 1;
  auto m = parse_metainfo(torrent(info));
  REQUIRE(m.ok());
  CHECK(m->multi_file);
  CHECK(m->is_private);
  CHECK(m->total_length == 36384);
  REQUIRE(m->files.size() == 4);
  CHECK(m->files[0].path_string() == "Show/s01/e01.mkv");
  CHECK(m->files[0].executable);
  CHECK(m->files[1].pad);
  CHECK(m->files[1].offset == 10000);
  CHECK(m->files[2].offset == 16384);
  CHECK_FALSE(m->files[2].pad);
  CHECK(m->files[3].hidden);
  CHECK(m->files[3].length == 0);
  CHECK(m->files[3].offset == 36384);
}

TEST_CASE("metainfo prefers UTF-8 names and paths") {
  Value::Dict info;
  info["name"] = "bad";
  info["name.utf-8"] = "Caf\xc3\xa9";
  info["piece length"] = 16384;
  Value::Dict f;
  f["length"] = 5;
  f["path"] = Value::List{"x"};
  f["path.utf-8"] = Value::List{"\xc3\xa9t\xc3\xa9.txt"};
  info["files"] = Value::List{Value(f)};
  info["pieces"] = hashes(1);
  auto m = parse_metainfo(torrent(info));
  REQUIRE(m.ok());
  CHECK(m->name == "Caf\xc3\xa9");
  CHECK(m->files[0].path_string() == "Caf\xc3\xa9/\xc3\xa9t\xc3\xa9.txt");
}

TEST_CASE("metainfo trackers: announce-list wins, tiers kept, empty entries skipped") {
  Value::Dict root;
  root["announce"] = "http://ignored/announce";
  root["announce-list"] = Value::List{Value::List{"udp://a:1", "udp://b:2"}, Value::List{}, Value::List{"http://c/x", ""}};
  auto m = parse_metainfo(torrent(single_info(), root));
  REQUIRE(m.ok());
  CHECK(m->trackers == std::vector<std::vector<std::string>>{{"udp://a:1", "udp://b:2"}, {"http://c/x"}});

  Value::Dict ws;
  ws["url-list"] = Value::List{"http://a/", "http://b/"};
  auto m2 = parse_metainfo(torrent(single_info(), ws));
  REQUIRE(m2.ok());
  CHECK(m2->web_seeds.size() == 2);
  CHECK(m2->trackers.empty());
}

TEST_CASE("metainfo sanitizes path components") {
  CHECK(sanitize_path_component("ok.mkv").value() == "ok.mkv");
  CHECK(sanitize_path_component("a/b\\c\x01").value() == "a_b_c_");
  CHECK_FALSE(sanitize_path_component("").ok());
  CHECK_FALSE(sanitize_path_component(".").ok());
  CHECK_FALSE(sanitize_path_component("..").ok());
  CHECK_FALSE(sanitize_path_component("/etc").ok());
  CHECK_FALSE(sanitize_path_component("\\windows").ok());
  CHECK_FALSE(sanitize_path_component("C:evil").ok());
  CHECK_FALSE(sanitize_path_component(std::string("a\0b", 3)).ok());
  CHECK(sanitize_path_component("...").value() == "...");  // only exactly "." and ".." are special
}

TEST_CASE("metainfo rejects unsafe paths in files") {
  const std::vector<Value::List> bad = {
      {"..", "etc", "passwd"}, {"a", "..", "b"}, {"/abs"}, {""}, {"a", ""}, {Value(std::string("n\0ul", 4))}, {},
  };
  for (const auto& p : bad) {
    Value::Dict info;
    info["name"] = "dir";
    info["piece length"] = 16384;
    info["files"] = Value::List{file(5, p)};
    info["pieces"] = hashes(1);
    const std::string e = error_of(torrent(info));
    INFO(e);
    CHECK(e.find("files[0].path") != std::string::npos);
  }
  Value::Dict info = single_info();
  info["name"] = "..";
  CHECK(error_of(torrent(info)).find("'name'") != std::string::npos);
}

TEST_CASE("metainfo rejects inconsistent geometry with clear messages") {
  auto with = [](auto mutate) {
    Value::Dict info = single_info();
    mutate(info);
    return error_of(torrent(info));
  };
  CHECK(with([](Value::Dict& i) { i["piece length"] = 1000; }).find("power of two") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["piece length"] = 8192; }).find("power of two") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["piece length"] = std::int64_t{1} << 40; }).find("limit") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["pieces"] = std::string(41, 'x'); }).find("multiple of 20") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["pieces"] = hashes(2); }).find("need 3") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["length"] = -1; }).find("negative") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["length"] = "12"; }).find("must be an integer") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i.erase("pieces"); }).find("'pieces' is missing") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i.erase("name"); }).find("'name' is missing") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i.erase("length"); }).find("neither") != std::string::npos);
  CHECK(with([](Value::Dict& i) { i["files"] = Value::List{}; }).find("both") != std::string::npos);
  CHECK(with([](Value::Dict& i) {
          i["length"] = 0;
          i["pieces"] = "";
        }).find("no data") != std::string::npos);
  CHECK(error_of("i5e").find("top level must be a dict") != std::string::npos);
  CHECK(error_of("d8:announce3:abce").find("'info' dict is missing") != std::string::npos);
  CHECK(error_of("d4:info").find("bencode") != std::string::npos);
}

TEST_CASE("metainfo rejects duplicate paths and overflowing totals") {
  Value::Dict info;
  info["name"] = "d";
  info["piece length"] = 16384;
  info["files"] = Value::List{file(5, {"a"}), file(5, {"a"})};
  info["pieces"] = hashes(1);
  CHECK(error_of(torrent(info)).find("duplicate path") != std::string::npos);
  info["files"] = Value::List{file(INT64_MAX, {"a"}), file(INT64_MAX, {"b"}), file(INT64_MAX, {"c"})};
  CHECK(error_of(torrent(info)).find("overflows") != std::string::npos);
}

TEST_CASE("metainfo refuses v2 and hybrid torrents naming BEP 52") {
  Value::Dict v2;
  v2["name"] = "x";
  v2["piece length"] = 16384;
  v2["meta version"] = 2;
  v2["file tree"] = Value::Dict{};
  CHECK(error_of(torrent(v2)).find("v2-only torrent: not supported yet (BEP 52)") != std::string::npos);
  Value::Dict hybrid = single_info();
  hybrid["meta version"] = 2;
  hybrid["file tree"] = Value::Dict{};
  CHECK(error_of(torrent(hybrid)).find("hybrid v1/v2 torrent: not supported yet (BEP 52)") != std::string::npos);
}

TEST_CASE("metainfo limits are parameters") {
  MetainfoLimits tiny;
  tiny.max_file_bytes = 10;
  CHECK_FALSE(parse_metainfo(torrent(single_info()), tiny).ok());
  Value::Dict info;
  info["name"] = "d";
  info["piece length"] = 16384;
  info["files"] = Value::List{file(5, {"a"}), file(5, {"b"})};
  info["pieces"] = hashes(1);
  MetainfoLimits one_file;
  one_file.max_files = 1;
  CHECK(parse_metainfo(torrent(info), one_file).error().message.find("limit 1") != std::string::npos);
  MetainfoLimits shallow;
  shallow.max_path_depth = 1;
  info["files"] = Value::List{file(5, {"a", "b"})};
  CHECK_FALSE(parse_metainfo(torrent(info), shallow).ok());
}

TEST_CASE("metainfo info dict alone (BEP 9) and re-encoding keep the hash") {
  const std::string info_bytes = Value(single_info()).encode();
  auto m = parse_info_dict(info_bytes);
  REQUIRE(m.ok());
  m->trackers = {{"http://a/announce"}, {"udp://b:80"}};
  m->web_seeds = {"http://w/"};
  m->comment = "c";
  m->created_by = "playhead";
  m->creation_date = 5;
  const std::string file_bytes = encode_torrent_file(*m);
  REQUIRE(bencode::decode(file_bytes).ok());  // strictly sorted keys
  auto again = parse_metainfo(file_bytes);
  REQUIRE(again.ok());
  CHECK(again->info_hash == m->info_hash);
  CHECK(again->trackers == m->trackers);
  CHECK(again->web_seeds == m->web_seeds);
  CHECK(again->comment == "c");
  CHECK(again->creation_date == 5);
}
