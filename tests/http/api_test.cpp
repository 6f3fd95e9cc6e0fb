// The JSON API against the fake backend over loopback: shapes and status codes of every route, the Bearer token,
// CORS for the configured origin only, traversal attempts, metrics and the embedded web page.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "http/service.hpp"
#include "http_test_support.hpp"

using namespace ph::http;
using namespace ph::http::test;
using nlohmann::json;

namespace {

struct ApiFixture {
  explicit ApiFixture(ApiOptions options = {}) : srv({}, options) {
    hash = srv.on_io([&] {
      auto& t = srv.backend().add("Big Movie", {{"Big Movie/movie.mkv", pattern_bytes(50000)},
                                                {"Big Movie/Sub Folder/sub ü.srt", "1\n"}}, 9);
      return t.info.info_hash.hex();
    });
  }
  std::vector<std::string> calls() {
    return srv.on_io([&] { return srv.backend().stats.calls; });
  }
  TestServer srv;
  std::string hash;
};

json body_json(const std::optional<ClientResponse>& r) {
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->header("content-type") == "application/json; charset=utf-8");
  return json::parse(r->body);
}

const char* kMagnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x";

}  // namespace

TEST_CASE("api: list shows every field of DESIGN.md", "[api]") {
  ApiFixture f;
  auto r = fetch(f.srv.port(), "GET", "/api/torrents");
  CHECK(r->status == 200);
  const auto j = body_json(r);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 1);
  const auto& t = j[0];
  for (const char* k : {"infoHash", "name", "state", "progress", "downloadedBytes", "uploadedBytes", "downloadRate",
                        "uploadRate", "peers", "memoryBytes"}) {
    INFO(k);
    CHECK(t.contains(k));
  }
  CHECK(t["infoHash"] == f.hash);
  CHECK(t["name"] == "Big Movie");
  CHECK(t["state"] == "downloading");
  CHECK(r->header("cache-control") == "no-store");
}

TEST_CASE("api: detail has files with stream URLs, pieces, buffered ranges", "[api]") {
  ApiFixture f;
  auto r = fetch(f.srv.port(), "GET", "/api/torrents/" + f.hash);
  CHECK(r->status == 200);
  const auto j = body_json(r);
  CHECK(j["infoHash"] == f.hash);
  REQUIRE(j["files"].size() == 2);
  const auto& file = j["files"][1];
  CHECK(file["index"] == 1);
  CHECK(file["path"] == "Big Movie/Sub Folder/sub ü.srt");
  CHECK(file["length"] == 2);
  CHECK(file.contains("priority"));
  CHECK(file.contains("progress"));
  CHECK(file["streamUrl"] == "/stream/" + f.hash + "/1/sub%20%C3%BC.srt");
  CHECK(j["pieces"] == "1100");
  CHECK(j["bufferedRanges"][0] == json{{"file", 0}, {"start", 0}, {"end", 32768}});
  CHECK(j["window"][0] == json{{"first", 1}, {"last", 2}});
  CHECK(j["playheads"][0]["offset"] == 20000);
  CHECK(j["peerList"][0]["address"] == "127.0.0.1:6881");
  // The streamUrl it gives really serves the file.
  auto s = fetch(f.srv.port(), "GET", file["streamUrl"].get<std::string>());
  CHECK(s->status == 200);
  CHECK(s->body == "1\n");
}

TEST_CASE("api: unknown or malformed info-hashes are 404 with a JSON error", "[api]") {
  ApiFixture f;
  for (const std::string& path : std::vector<std::string>{"/api/torrents/" + std::string(40, 'a'), "/api/torrents/xyz",
                                 "/api/torrents/" + f.hash + "/nope", "/api/nothing"}) {
    INFO(path);
    auto r = fetch(f.srv.port(), "GET", path);
    CHECK(r->status == 404);
    CHECK(body_json(r).contains("error"));
  }
  CHECK(fetch(f.srv.port(), "POST", "/api/torrents/" + std::string(40, 'b') + "/pause")->status == 404);
  CHECK(fetch(f.srv.port(), "DELETE", "/api/torrents/" + std::string(40, 'b'))->status == 404);
}

TEST_CASE("api: add by magnet is 201 then 200, bad input 400", "[api]") {
  ApiFixture f;
  const std::string body = json{{"magnet", kMagnet}}.dump();
  auto created = fetch(f.srv.port(), "POST", "/api/torrents", {"Content-Type: application/json"}, body);
  CHECK(created->status == 201);
  const auto j = body_json(created);
  CHECK(j["infoHash"] == "0123456789abcdef0123456789abcdef01234567");
  CHECK(j["state"] == "metadata");
  CHECK(created->header("location") == "/api/torrents/0123456789abcdef0123456789abcdef01234567");
  auto again = fetch(f.srv.port(), "POST", "/api/torrents", {"Content-Type: application/json"}, body);
  CHECK(again->status == 200);
  CHECK(fetch(f.srv.port(), "POST", "/api/torrents", {}, "{not json")->status == 400);
  CHECK(fetch(f.srv.port(), "POST", "/api/torrents", {}, "{\"magnet\": 5}")->status == 400);
  CHECK(fetch(f.srv.port(), "POST", "/api/torrents", {}, "[]")->status == 400);
  auto bad = fetch(f.srv.port(), "POST", "/api/torrents", {}, "{\"magnet\": \"http://nope\"}");
  CHECK(bad->status == 400);
  CHECK(body_json(bad)["error"] == "not a magnet link");
  // A stream of a torrent whose metadata is not known yet: 503 with Retry-After, not a hang.
  auto s = fetch(f.srv.port(), "GET", "/stream/0123456789abcdef0123456789abcdef01234567/0");
  CHECK(s->status == 503);
  CHECK(s->header("retry-after") == "2");
}

TEST_CASE("api: add by .torrent upload", "[api]") {
  ApiFixture f;
  auto r = fetch(f.srv.port(), "POST", "/api/torrents", {"Content-Type: application/x-bittorrent"}, "d4:infod...e");
  CHECK(r->status == 201);
  CHECK(body_json(r)["name"] == "uploaded");
  auto bad = fetch(f.srv.port(), "POST", "/api/torrents", {"Content-Type: application/x-bittorrent"}, "garbage");
  CHECK(bad->status == 400);
  auto empty = fetch(f.srv.port(), "POST", "/api/torrents", {"Content-Type: application/x-bittorrent"}, "");
  CHECK(empty->status == 400);
}

TEST_CASE("api: remove, prioritize, play, pause, peers", "[api]") {
  ApiFixture f;
  const auto base = "/api/torrents/" + f.hash;

  auto pr = fetch(f.srv.port(), "POST", base + "/files/1/prioritize");
  CHECK(pr->status == 200);
  CHECK(body_json(pr)["file"] == 1);
  CHECK(fetch(f.srv.port(), "POST", base + "/files/2/prioritize")->status == 404);
  CHECK(fetch(f.srv.port(), "POST", base + "/files/x/prioritize")->status == 404);
  CHECK(fetch(f.srv.port(), "GET", base + "/files/1/prioritize")->status == 405);

  auto pause = fetch(f.srv.port(), "POST", base + "/pause");
  CHECK(pause->status == 200);
  CHECK(body_json(pause)["state"] == "paused");
  auto play = fetch(f.srv.port(), "POST", base + "/play");
  CHECK(play->status == 200);
  CHECK(body_json(play)["state"] == "downloading");

  auto peer = fetch(f.srv.port(), "POST", base + "/peers", {}, "{\"address\": \"127.0.0.1:51413\"}");
  CHECK(peer->status == 202);
  CHECK(fetch(f.srv.port(), "POST", base + "/peers", {}, "{\"address\": \"nonsense\"}")->status == 400);
  CHECK(fetch(f.srv.port(), "POST", base + "/peers", {}, "{}")->status == 400);
  CHECK(fetch(f.srv.port(), "POST", base + "/peers", {}, "{\"address\": \"[::1]:6881\"}")->status == 202);

  auto del = fetch(f.srv.port(), "DELETE", base + "?deleteFiles=true");
  CHECK(del->status == 200);
  CHECK(body_json(del)["deleteFiles"] == true);
  CHECK(fetch(f.srv.port(), "GET", base)->status == 404);

  const std::vector<std::string> want = {"prioritize " + f.hash + " 1", "pause " + f.hash, "play " + f.hash,
                                         "peer " + f.hash + " 127.0.0.1:51413", "peer " + f.hash + " [::1]:6881",
                                         "remove " + f.hash + " delete"};
  CHECK(f.calls() == want);
}

TEST_CASE("api: Bearer token required on /api when configured", "[api][auth]") {
  ApiFixture f(ApiOptions{"s3cret", ""});
  auto none = fetch(f.srv.port(), "GET", "/api/torrents");
  CHECK(none->status == 401);
  CHECK(none->header("www-authenticate").find("Bearer") == 0);
  CHECK(body_json(none).contains("error"));
  CHECK(fetch(f.srv.port(), "GET", "/api/torrents", {"Authorization: Bearer wrong"})->status == 401);
  CHECK(fetch(f.srv.port(), "GET", "/api/torrents", {"Authorization: Bearer s3cre"})->status == 401);
  CHECK(fetch(f.srv.port(), "GET", "/api/torrents", {"Authorization: Basic s3cret"})->status == 401);
  CHECK(fetch(f.srv.port(), "GET", "/api/torrents", {"Authorization: Bearer s3cret"})->status == 200);
  CHECK(fetch(f.srv.port(), "POST", "/api/torrents/" + f.hash + "/pause")->status == 401);
  CHECK(f.calls().empty());  // nothing reached the backend
  CHECK(fetch(f.srv.port(), "GET", "/healthz")->status == 200);
  CHECK(fetch(f.srv.port(), "GET", "/")->status == 200);
}

TEST_CASE("api: CORS only for the configured origin", "[api][cors]") {
  SECTION("none configured: no CORS headers") {
    ApiFixture f;
    auto r = fetch(f.srv.port(), "GET", "/api/torrents", {"Origin: http://evil.example"});
    CHECK(r->status == 200);
    CHECK(r->header("access-control-allow-origin").empty());
  }
  SECTION("configured: that origin only, preflight answered") {
    ApiFixture f(ApiOptions{"", "http://app.example"});
    auto ok = fetch(f.srv.port(), "GET", "/api/torrents", {"Origin: http://app.example"});
    CHECK(ok->header("access-control-allow-origin") == "http://app.example");
    CHECK(ok->header("vary") == "Origin");
    auto evil = fetch(f.srv.port(), "GET", "/api/torrents", {"Origin: http://evil.example"});
    CHECK(evil->header("access-control-allow-origin").empty());
    auto pre = fetch(f.srv.port(), "OPTIONS", "/api/torrents",
                     {"Origin: http://app.example", "Access-Control-Request-Method: POST"});
    CHECK(pre->status == 204);
    CHECK(pre->header("access-control-allow-headers").find("Authorization") != std::string::npos);
    CHECK(pre->header("content-length").empty());
  }
}

TEST_CASE("api: traversal attempts never reach a file", "[api][security]") {
  ApiFixture f;
  for (const std::string& path : std::vector<std::string>
       {"/stream/../../etc/passwd", "/stream/..", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
        "/stream/" + f.hash + "/0/../../../etc/passwd", "/stream/" + f.hash + "/../0", "/stream/" + f.hash + "/0/..",
        "/stream/" + f.hash + "/-1", "/stream/" + f.hash + "/99", "/stream/" + f.hash + "/0x1",
        "/index.html/..", "/./index.html", "/etc/passwd", "/stream/%00/0", "//etc/passwd", "/..\\..\\etc\\passwd"}) {
    INFO(path);
    auto r = fetch(f.srv.port(), "GET", path);
    REQUIRE(r);
    CHECK((r->status == 404 || r->status == 400));
    CHECK(r->body.find("root:") == std::string::npos);
  }
  CHECK(fetch(f.srv.port(), "GET", "/stream/" + f.hash + "/0%zz")->status == 400);  // bad escape
}

TEST_CASE("api: metrics in Prometheus text format, health and the page", "[api]") {
  ApiFixture f;
  fetch(f.srv.port(), "GET", "/nope");
  auto m = fetch(f.srv.port(), "GET", "/metrics");
  CHECK(m->status == 200);
  CHECK(m->header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  for (const char* line : {"# TYPE playhead_torrents gauge\nplayhead_torrents 1\n",
                           "playhead_arena_used_bytes 123456789012\n", "playhead_arena_evictions_total 7\n",
                           "playhead_http_responses_total{code=\"404\"} 1\n", "playhead_http_stream_stalls_total 0\n",
                           "playhead_torrent_progress{info_hash=\""}) {
    INFO(line);
    CHECK(m->body.find(line) != std::string::npos);
  }
  auto h = fetch(f.srv.port(), "GET", "/healthz");
  CHECK(h->status == 200);
  auto page = fetch(f.srv.port(), "GET", "/");
  CHECK(page->status == 200);
  CHECK(page->header("content-type") == "text/html; charset=utf-8");
  CHECK(page->body.find("<video") != std::string::npos);
  CHECK(page->body.find("/api/torrents") != std::string::npos);
  auto head = fetch(f.srv.port(), "HEAD", "/");
  CHECK(head->status == 200);
  CHECK(head->header("content-length") == std::to_string(page->body.size()));
  CHECK(fetch(f.srv.port(), "GET", "/missing.js")->status == 404);
}

TEST_CASE("service: refuses a public address without a token, serves on loopback", "[api][security]") {
  asio::io_context io;
  FakeBackend backend(io);
  ph::Config open_cfg;
  open_cfg.http_host = "0.0.0.0";
  open_cfg.http_port = 0;
  HttpService refused(io, backend, open_cfg);
  auto r = refused.start();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("API_TOKEN") != std::string::npos);

  ph::Config cfg;
  cfg.http_port = 0;
  cfg.api_token = "t";
  HttpService svc(io, backend, cfg);
  REQUIRE(svc.start());
  CHECK(svc.port() != 0);
  CHECK(svc.url() == "http://127.0.0.1:" + std::to_string(svc.port()) + "/");
  auto fut = std::async(std::launch::async, [port = svc.port()] { return fetch(port, "GET", "/api/torrents"); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(20));
  }
  REQUIRE(fut.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto got = fut.get();
  REQUIRE(got);
  CHECK(got->status == 401);  // the token from the Config is enforced
  svc.stop();
}
