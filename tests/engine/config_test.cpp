// Configuration: .env syntax, sizes, the order of sources (defaults < .env < environment < flags), validation
// errors that name the variable, and the help text listing every variable.
#include <catch2/catch.hpp>

#include <map>

#include "engine/config.hpp"

using namespace ph;

namespace {

ConfigSources sources(std::map<std::string, std::string> files, std::map<std::string, std::string> env) {
  ConfigSources s;
  s.read_file = [files](const std::string& p) -> std::optional<std::string> {
    auto it = files.find(p);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  s.getenv = [env](std::string_view n) -> std::optional<std::string> {
    auto it = env.find(std::string(n));
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return s;
}

}  // namespace

TEST_CASE("config: sizes with binary and decimal units", "[config]") {
  CHECK(parse_size("512MiB").value() == 512ull << 20);
  CHECK(parse_size("1GiB").value() == 1ull << 30);
  CHECK(parse_size("500MB").value() == 500'000'000ull);
  CHECK(parse_size("64k").value() == 65536);
  CHECK(parse_size("2 gib").value() == 2ull << 30);
  CHECK(parse_size("1048576").value() == 1048576);
  CHECK(parse_size(" 3TB ").value() == 3'000'000'000'000ull);
  CHECK_FALSE(parse_size("lots"));
  CHECK_FALSE(parse_size(""));
  CHECK_FALSE(parse_size("-1GiB"));
  CHECK_FALSE(parse_size("1.5GiB"));
  CHECK_FALSE(parse_size("12 parsecs"));
  CHECK_FALSE(parse_size("99999999999999999999"));
  CHECK_FALSE(parse_size("20000000TiB"));
}

TEST_CASE("config: .env comments, quotes, export prefix", "[config]") {
  const auto r = parse_env_file(
      "# a comment\n"
      "\n"
      "export TORRENT_STORAGE_MODE=disk\n"
      "TORRENT_MEMORY_LIMIT = 1GiB   # trailing comment\n"
      "TORRENT_DOWNLOAD_DIR=\"/tmp/my downloads\"\n"
      "API_TOKEN='s3cr#t $HOME'\n"
      "HTTP_CORS_ORIGIN=http://x#y\r\n"
      "QUOTED=\"a\\\"b\\\\c\\nd\" # c\n"
      "EMPTY=\n"
      "  exported_not=1");
  REQUIRE(r);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"TORRENT_STORAGE_MODE", "disk"},  {"TORRENT_MEMORY_LIMIT", "1GiB"},  {"TORRENT_DOWNLOAD_DIR", "/tmp/my downloads"},
      {"API_TOKEN", "s3cr#t $HOME"},     {"HTTP_CORS_ORIGIN", "http://x#y"}, {"QUOTED", "a\"b\\c\nd"},
      {"EMPTY", ""},                     {"exported_not", "1"}};
  CHECK(*r == want);
}

TEST_CASE("config: malformed .env lines are errors with the line number", "[config]") {
  auto a = parse_env_file("A=1\nthis is not an assignment\n");
  REQUIRE_FALSE(a);
  CHECK(a.error().message.find("line 2") != std::string::npos);
  CHECK_FALSE(parse_env_file("A=\"unterminated\n"));
  CHECK_FALSE(parse_env_file("1A=x\n"));
  CHECK_FALSE(parse_env_file("A=\"x\" junk\n"));
  CHECK(parse_env_file("").value().empty());
}

TEST_CASE("config: defaults match DESIGN.md", "[config]") {
  auto r = load_config({}, sources({}, {}));
  REQUIRE(r);
  const auto& c = r->config;
  CHECK(c.storage_mode == StorageMode::memory);
  CHECK(c.pause_on_video_pause);
  CHECK(c.memory_limit == 512ull << 20);
  CHECK(c.readahead == 32ull << 20);
  CHECK(c.download_dir == "downloads");
  CHECK(c.peer_port == 6881);
  CHECK(c.dht);
  CHECK_FALSE(c.dht_bootstrap.empty());
  CHECK(c.http_host == "127.0.0.1");
  CHECK(c.http_port == 8080);
  CHECK(c.api_token.empty());
  CHECK(c.cors_origin.empty());
}

TEST_CASE("config: later sources win: .env < environment < flags", "[config]") {
  auto s = sources({{".env", "TORRENT_MEMORY_LIMIT=1GiB\nHTTP_PORT=9000\nTORRENT_READAHEAD=8MiB\nOTHER_TOOL=x\n"}},
                   {{"HTTP_PORT", "9100"}, {"TORRENT_DHT", "false"}, {"HTTP_HOST", "::1"}});
  auto r = load_config({"--http-port", "9200", "--pause-on-video-pause=no", "magnet:?xt=urn:btih:abc", "a.torrent"}, s);
  REQUIRE(r);
  CHECK(r->config.memory_limit == 1ull << 30);
  CHECK(r->config.readahead == 8ull << 20);
  CHECK(r->config.http_port == 9200);
  CHECK(r->config.http_host == "::1");
  CHECK_FALSE(r->config.dht);
  CHECK_FALSE(r->config.pause_on_video_pause);
  CHECK(r->positional == std::vector<std::string>{"magnet:?xt=urn:btih:abc", "a.torrent"});
}

TEST_CASE("config: --env-file replaces ./.env and must exist", "[config]") {
  auto s = sources({{".env", "HTTP_PORT=1111\n"}, {"/etc/ph.env", "HTTP_PORT=2222\n"}}, {});
  auto r = load_config({"--env-file", "/etc/ph.env"}, s);
  REQUIRE(r);
  CHECK(r->config.http_port == 2222);
  CHECK(r->env_file.value() == "/etc/ph.env");
  auto missing = load_config({"--env-file=/nope"}, s);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("/nope") != std::string::npos);
}

TEST_CASE("config: invalid values are clear errors naming the variable", "[config]") {
  auto mode = load_config({}, sources({}, {{"TORRENT_STORAGE_MODE", "ram"}}));
  REQUIRE_FALSE(mode);
  CHECK(mode.error().message.find("TORRENT_STORAGE_MODE") != std::string::npos);
  CHECK(mode.error().message.find("ram") != std::string::npos);

  auto lots = load_config({}, sources({{".env", "TORRENT_MEMORY_LIMIT=lots\n"}}, {}));
  REQUIRE_FALSE(lots);
  CHECK(lots.error().message.find("TORRENT_MEMORY_LIMIT") != std::string::npos);
  CHECK(lots.error().message.find(".env") != std::string::npos);

  CHECK_FALSE(load_config({"--http-port", "70000"}, sources({}, {})));
  CHECK_FALSE(load_config({"--http-port"}, sources({}, {})));
  CHECK_FALSE(load_config({"--dht", "maybe"}, sources({}, {})));
  CHECK_FALSE(load_config({"--no-such-flag"}, sources({}, {})));
  CHECK_FALSE(load_config({"--memory-limit", "1MiB"}, sources({}, {})));        // below the floor
  CHECK_FALSE(load_config({"--readahead", "1GiB"}, sources({}, {})));          // larger than the memory budget
  CHECK_FALSE(load_config({"--dht-bootstrap", "nohostport"}, sources({}, {})));
  CHECK_FALSE(load_config({}, sources({{".env", "garbage line\n"}}, {})));
  // disk mode does not tie the readahead to the memory budget
  CHECK(load_config({"--storage-mode", "disk", "--readahead", "1GiB"}, sources({}, {})));
}

TEST_CASE("config: subcommand flags after a positional pass through", "[config]") {
  auto r = load_config({"seed", "f.torrent", "--data", "/srv/f", "--peer-port", "7000"}, sources({}, {}));
  REQUIRE(r);
  CHECK(r->positional == std::vector<std::string>{"seed", "f.torrent", "--data", "/srv/f"});
  CHECK(r->config.peer_port == 7000);
}

TEST_CASE("config: help and version flags, help text lists every variable", "[config]") {
  auto r = load_config({"--help", "--version"}, sources({}, {}));
  REQUIRE(r);
  CHECK(r->help);
  CHECK(r->version);
  const auto help = help_text();
  for (const auto& v : config_variables()) {
    CHECK(help.find(std::string(v.name)) != std::string::npos);
    CHECK(help.find(std::string(v.flag)) != std::string::npos);
  }
  CHECK(help.find("--env-file") != std::string::npos);
}

TEST_CASE("config: describe() redacts the token", "[config]") {
  auto r = load_config({"--api-token", "hunter2", "--memory-limit", "1GiB"}, sources({}, {}));
  REQUIRE(r);
  const auto d = r->config.describe();
  CHECK(d.find("hunter2") == std::string::npos);
  CHECK(d.find("API_TOKEN=(set)") != std::string::npos);
  CHECK(d.find("TORRENT_MEMORY_LIMIT=1GiB") != std::string::npos);
}
