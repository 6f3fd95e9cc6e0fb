// bt-inspect as a user runs it: every file of the malformed corpus gives one clear error and exit 1; good torrents
// and magnets are shown as text and as JSON; --pieces and --bencode work.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "net/bencode.hpp"
#include "net/sha1.hpp"

namespace fs = std::filesystem;
using ph::bencode::Value;

namespace {

struct Run {
  int exit_code = -1;  // -1: killed by a signal (a crash or the timeout)
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "playhead-inspect-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Runs bt-inspect with a 30 s bound (coreutils timeout) and captures both streams.
Run inspect(const std::string& args, const TempDir& tmp) {
  const fs::path err_file = tmp.path / "stderr.txt";
  const std::string cmd = "timeout 30 '" PLAYHEAD_BIN_DIR "/bt-inspect' " + args + " 2>'" + err_file.string() + "'";
  Run r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err_file);
  return r;
}

std::string quote(const fs::path& p) { return "'" + p.string() + "'"; }

std::string sample_torrent() {
  Value::Dict info;
  info["name"] = "Show";
  info["piece length"] = 16384;
  Value::Dict f1;
  f1["length"] = 20000;
  f1["path"] = Value::List{"e01.mkv"};
  Value::Dict pad;
  pad["length"] = 12768;
  pad["path"] = Value::List{".pad", "12768"};
  pad["attr"] = "p";
  Value::Dict f2;
  f2["length"] = 100;
  f2["path"] = Value::List{"sub", "e02.mkv"};
  info["files"] = Value::List{Value(f1), Value(pad), Value(f2)};
  info["pieces"] = std::string(60, '\x01');
  Value::Dict root;
  root["announce-list"] = Value::List{Value::List{"http://a/announce", "http://b/announce"}, Value::List{"udp://c:1"}};
  root["url-list"] = "http://ws/";
  root["info"] = Value(info);
  return Value(root).encode();
}

}  // namespace

TEST_CASE("bt-inspect: every malformed input gives a clear error and exit 1") {
  const fs::path dir = fs::path(PLAYHEAD_SOURCE_DIR) / "tests/vectors/malformed";
  std::ifstream manifest(dir / "EXPECTED.tsv");
  REQUIRE(manifest);
  std::set<std::string> listed;
  std::string line;
  TempDir tmp;
  while (std::getline(manifest, line)) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    const std::string name = line.substr(0, tab);
    const std::string phrase = line.substr(tab + 1);
    listed.insert(name);
    const Run r = inspect(quote(dir / name), tmp);
    INFO(name << ": exit " << r.exit_code << ", stderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("bt-inspect: ", 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);  // one line, not a dump
    CHECK(r.err.find(phrase) != std::string::npos);
    // The same bytes through --json still fail: scripts must see the error too.
    CHECK(inspect("--json " + quote(dir / name), tmp).exit_code == 1);
  }
  CHECK(listed.size() >= 30);
  // Every corpus file is in the manifest (a new file without an expectation would go untested).
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name == "EXPECTED.tsv" || name == "make_corpus.py") continue;
    INFO(name);
    CHECK(listed.count(name) == 1);
  }
}

TEST_CASE("bt-inspect: deep nesting through --bencode is refused without a crash") {
  TempDir tmp;
  const fs::path f = tmp.path / "deep.bencode";
  std::ofstream(f, std::ios::binary) << std::string(100000, 'l') << std::string(100000, 'e');
  const Run r = inspect("--bencode " + quote(f), tmp);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("nesting deeper than") != std::string::npos);
}

TEST_CASE("bt-inspect: shows a multi-file torrent as text and JSON") {
  TempDir tmp;
  const std::string bytes = sample_torrent();
  const fs::path f = tmp.path / "show.torrent";
  std::ofstream(f, std::ios::binary) << bytes;
  auto doc = ph::bencode::decode(bytes);
  REQUIRE(doc.ok());
  const std::string hash = ph::Sha1::of(doc->root().find("info").raw()).hex();

  const Run text = inspect(quote(f), tmp);
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("info-hash:    " + hash) != std::string::npos);
  CHECK(text.out.find("Show/sub/e02.mkv") != std::string::npos);
  CHECK(text.out.find("[padding]") != std::string::npos);
  CHECK(text.out.find("tier 0: http://b/announce") != std::string::npos);
  CHECK(text.out.find("tier 1: udp://c:1") != std::string::npos);
  CHECK(text.out.find("http://ws/") != std::string::npos);

  const Run js = inspect("--json --pieces " + quote(f), tmp);
  REQUIRE(js.exit_code == 0);
  auto j = nlohmann::json::parse(js.out);
  CHECK(j["infoHash"] == hash);
  CHECK(j["name"] == "Show");
  CHECK(j["totalLength"] == 32868);
  CHECK(j["pieceLength"] == 16384);
  CHECK(j["pieceCount"] == 3);
  REQUIRE(j["files"].size() == 3);
  CHECK(j["files"][1]["pad"] == true);
  CHECK(j["files"][2]["offset"] == 32768);
  CHECK(j["trackers"][0][1] == "http://b/announce");
  CHECK(j["webSeeds"][0] == "http://ws/");
  REQUIRE(j["pieces"].size() == 3);
  CHECK(j["pieces"][0] == "0101010101010101010101010101010101010101");
}

TEST_CASE("bt-inspect: magnet links as arguments and in files") {
  TempDir tmp;
  const std::string link =
      "magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK&dn=My%20Movie&tr=udp%3A%2F%2Ft%3A1&x.pe=127.0.0.1:7&so=1-2";
  const Run js = inspect("--json '" + link + "'", tmp);
  REQUIRE(js.exit_code == 0);
  auto j = nlohmann::json::parse(js.out);
  CHECK(j["type"] == "magnet");
  CHECK(j["infoHash"] == "c12fe1c06bba254a9dc9f519b335aa7c1367a88a");
  CHECK(j["name"] == "My Movie");
  CHECK(j["trackers"][0] == "udp://t:1");
  CHECK(j["peers"][0] == "127.0.0.1:7");
  CHECK(j["selectOnly"][0][1] == 2);

  const fs::path f = tmp.path / "link.magnet";
  std::ofstream(f) << link << "\n";
  const Run text = inspect(quote(f), tmp);
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("c12fe1c06bba254a9dc9f519b335aa7c1367a88a") != std::string::npos);
  CHECK(text.out.find("My Movie") != std::string::npos);
}

TEST_CASE("bt-inspect: --bencode pretty-prints text and binary strings") {
  TempDir tmp;
  const fs::path f = tmp.path / "any.bencode";
  std::ofstream(f, std::ios::binary) << "d1:bi-3e1:al4:text3:\x01\x02\xff" "ee";
  const Run r = inspect("--bencode " + quote(f), tmp);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("\"text\"") != std::string::npos);
  CHECK(r.out.find("<hex 0102ff> (3 bytes)") != std::string::npos);
  CHECK(r.out.find("-3") != std::string::npos);
}

TEST_CASE("bt-inspect: usage errors") {
  TempDir tmp;
  CHECK(inspect("", tmp).exit_code == 2);
  CHECK(inspect("--bogus x", tmp).exit_code == 1);
  const Run missing = inspect(quote(tmp.path / "nope.torrent"), tmp);
  CHECK(missing.exit_code == 1);
  CHECK(missing.err.find("No such file") != std::string::npos);
  CHECK(inspect(quote(tmp.path), tmp).exit_code == 1);  // a directory
}
