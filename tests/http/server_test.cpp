// The server over real loopback sockets against the fake backend: the Range matrix byte-exact, HEAD, keep-alive,
// pipelining, limits (header, body, methods, framing), timeouts, stalls, backpressure with a slow reader, many
// concurrent streams, and curl as an independent client.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "http_test_support.hpp"

using namespace ph::http;
using namespace ph::http::test;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  explicit Fixture(ServerLimits limits = {}, std::size_t size = (1 << 20) + 123) : srv(limits) {
    data = pattern_bytes(size, 3);
    hash = srv.on_io([&] {
      auto& t = srv.backend().add("movie", {{"movie/Movie File.mp4", data}, {"movie/subs.srt", "1\n00:00 --> x\n"}}, 5);
      return t.info.info_hash.hex();
    });
    url = "/stream/" + hash + "/0/Movie%20File.mp4";
  }
  TestServer srv;
  std::string data;
  std::string hash;
  std::string url;
};

std::string get_range(const ClientResponse& r) { return r.header("content-range"); }

}  // namespace

TEST_CASE("stream: 200 without Range, byte-exact, with type, length, ETag and Accept-Ranges", "[stream]") {
  Fixture f;
  auto r = fetch(f.srv.port(), "GET", f.url);
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == f.data);
  CHECK(r->header("content-length") == std::to_string(f.data.size()));
  CHECK(r->header("content-type") == "video/mp4");
  CHECK(r->header("accept-ranges") == "bytes");
  CHECK(r->header("etag") == "\"" + f.hash + "-0-" + std::to_string(f.data.size()) + "\"");
  CHECK(r->header("content-range").empty());
  auto subs = fetch(f.srv.port(), "GET", "/stream/" + f.hash + "/1");  // the name segment is optional
  REQUIRE(subs);
  CHECK(subs->status == 200);
  CHECK(subs->header("content-type") == "application/x-subrip; charset=utf-8");
}

TEST_CASE("stream: the Range matrix, byte-exact", "[stream]") {
  Fixture f;
  const auto len = f.data.size();
  struct Case {
    std::string range;
    std::uint64_t first, last;
  };
  const std::vector<Case> cases = {
      {"bytes=0-99", 0, 99},
      {"bytes=100-", 100, len - 1},
      {"bytes=-500", len - 500, len - 1},
      {"bytes=5-5", 5, 5},
      {"bytes=1000000-99999999", 1000000, len - 1},
      {"bytes=" + std::to_string(len - 1) + "-", len - 1, len - 1},
      {"bytes=0-10,5-20", 0, 20},
      {"bytes=-99999999", 0, len - 1},
  };
  for (const auto& c : cases) {
    INFO(c.range);
    auto r = fetch(f.srv.port(), "GET", f.url, {"Range: " + c.range});
    REQUIRE(r);
    CHECK(r->status == 206);
    CHECK(get_range(*r) == "bytes " + std::to_string(c.first) + "-" + std::to_string(c.last) + "/" + std::to_string(len));
    CHECK(r->header("content-length") == std::to_string(c.last - c.first + 1));
    CHECK(r->body == f.data.substr(c.first, c.last - c.first + 1));
  }
}

TEST_CASE("stream: unsatisfiable ranges get 416 with bytes */len", "[stream]") {
  Fixture f;
  const auto len = std::to_string(f.data.size());
  for (const std::string& range : std::vector<std::string>{"bytes=" + len + "-", "bytes=99999999-", "bytes=-0"}) {
    INFO(range);
    auto r = fetch(f.srv.port(), "GET", f.url, {"Range: " + range});
    REQUIRE(r);
    CHECK(r->status == 416);
    CHECK(get_range(*r) == "bytes */" + len);
    CHECK(r->body.empty());
  }
  CHECK(f.srv.on_io([&] { return f.srv.backend().stats.sources_open; }) == 0);
}

TEST_CASE("stream: bad Range syntax is ignored (200), never a crash", "[stream]") {
  Fixture f;
  for (const std::string& range : std::vector<std::string>{"bytes=abc", "bytes=10-5", "items=0-1", "bytes=0-1,5-6", "bytes", "bytes=--1",
                                  std::string(4000, 'x')}) {
    auto r = fetch(f.srv.port(), "GET", f.url, {"Range: " + range});
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.size() == f.data.size());
  }
}

TEST_CASE("stream: HEAD gives the headers of GET and no body", "[stream]") {
  Fixture f;
  Client c(f.srv.port());
  c.send("HEAD " + f.url + " HTTP/1.1\r\nHost: x\r\n\r\n");
  auto full = c.read_response(true);
  REQUIRE(full);
  CHECK(full->status == 200);
  CHECK(full->header("content-length") == std::to_string(f.data.size()));
  c.send("HEAD " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n");
  auto part = c.read_response(true);
  REQUIRE(part);
  CHECK(part->status == 206);
  CHECK(part->header("content-length") == "10");
  CHECK(get_range(*part) == "bytes 10-19/" + std::to_string(f.data.size()));
  // No body bytes may follow: the next response on the connection must start right away.
  c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto h = c.read_response();
  REQUIRE(h);
  CHECK(h->status == 200);
  CHECK(h->body == "ok\n");
  CHECK(f.srv.on_io([&] { return f.srv.backend().stats.reads; }) == 0);
}

TEST_CASE("stream: If-Range with our ETag honours Range, anything else gives 200", "[stream]") {
  Fixture f;
  const auto etag = fetch(f.srv.port(), "HEAD", f.url)->header("etag");
  auto same = fetch(f.srv.port(), "GET", f.url, {"Range: bytes=0-9", "If-Range: " + etag});
  REQUIRE(same);
  CHECK(same->status == 206);
  CHECK(same->body == f.data.substr(0, 10));
  auto other = fetch(f.srv.port(), "GET", f.url, {"Range: bytes=0-9", "If-Range: \"other\""});
  REQUIRE(other);
  CHECK(other->status == 200);
  CHECK(other->body.size() == f.data.size());
  auto date = fetch(f.srv.port(), "GET", f.url, {"Range: bytes=0-9", "If-Range: Tue, 24 Nov 2026 04:00:00 GMT"});
  CHECK(date->status == 200);
}

TEST_CASE("stream: bytes arrive incrementally from a slow source", "[stream]") {
  Fixture f;
  f.srv.on_io([&] {
    f.srv.backend().delay = 100ms;
    f.srv.backend().chunk = 1000;
    return 0;
  });
  Client c(f.srv.port());
  c.send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4999\r\n\r\n");
  // The headers and the first chunk come long before the last chunk can exist (5 chunks x 100 ms).
  const auto t0 = std::chrono::steady_clock::now();
  auto first = c.recv_some(2s);
  REQUIRE(first);
  REQUIRE(!first->empty());
  const auto t_first = std::chrono::steady_clock::now() - t0;
  std::string all = *first;
  while (all.find("\r\n\r\n") == std::string::npos || all.size() - all.find("\r\n\r\n") - 4 < 5000) {
    auto more = c.recv_some(2s);
    REQUIRE(more);
    REQUIRE(!more->empty());
    all += *more;
  }
  const auto t_all = std::chrono::steady_clock::now() - t0;
  CHECK(all.substr(all.find("\r\n\r\n") + 4) == f.data.substr(0, 5000));
  CHECK(t_first < 250ms);
  CHECK(t_all >= 450ms);
  CHECK(f.srv.on_io([&] { return f.srv.backend().stats.reads; }) == 5);
}

TEST_CASE("server: keep-alive serves many requests on one connection", "[server]") {
  Fixture f;
  Client c(f.srv.port());
  for (int i = 0; i < 20; ++i) {
    const auto first = static_cast<std::size_t>(i) * 1000;
    c.send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=" + std::to_string(first) + "-" +
           std::to_string(first + 4999) + "\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 206);
    CHECK(r->body == f.data.substr(first, 5000));
    CHECK(r->header("connection").empty());
  }
  CHECK(f.srv.on_io([&] { return f.srv.server().stats().connections_accepted; }) == 1);
}

TEST_CASE("server: pipelined requests are answered in order", "[server]") {
  Fixture f;
  f.srv.on_io([&] {
    f.srv.backend().delay = 30ms;  // the stream answer is slow; the next ones must still wait their turn
    f.srv.backend().chunk = 3000;
    return 0;
  });
  Client c(f.srv.port());
  std::string batch = "GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9999\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "HEAD " + f.url + " HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /api/torrents HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                      "GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\nConnection: close\r\n\r\n";
  c.send(batch);
  auto a = c.read_response();
  REQUIRE(a);
  CHECK(a->status == 206);
  CHECK(a->body == f.data.substr(0, 10000));
  auto b = c.read_response();
  REQUIRE(b);
  CHECK(b->body == "ok\n");
  auto h = c.read_response(true);
  REQUIRE(h);
  CHECK(h->status == 200);
  auto p = c.read_response();
  REQUIRE(p);
  CHECK(p->status == 400);  // {} has no magnet
  auto last = c.read_response();
  REQUIRE(last);
  CHECK(last->status == 206);
  CHECK(last->body == f.data.substr(f.data.size() - 3));
  CHECK(last->header("connection") == "close");
  CHECK(c.closed_within(2s));
}

TEST_CASE("server: request byte-split at every position still parses", "[server]") {
  Fixture f;
  const std::string req = "GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=7-8\r\n\r\n";
  for (std::size_t cut = 1; cut < req.size(); cut += 7) {
    Client c(f.srv.port());
    c.send(req.substr(0, cut));
    std::this_thread::sleep_for(2ms);
    c.send(req.substr(cut));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == f.data.substr(7, 2));
  }
}

TEST_CASE("server: limits give well-formed errors", "[server][limits]") {
  Fixture f;
  SECTION("a 1 MiB header is refused with 431 and the connection closed") {
    Client c(f.srv.port());
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    c.send(std::string(1 << 20, 'a'));  // the server stops reading well before this is all sent
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
    CHECK(r->header("content-type") == "application/json; charset=utf-8");
    CHECK(r->body.find("\"error\"") != std::string::npos);
    CHECK(c.closed_within(2s));
  }
  SECTION("many small headers also count") {
    std::vector<std::string> hs;
    for (int i = 0; i < 150; ++i) hs.push_back("X-H" + std::to_string(i) + ": v");
    CHECK(fetch(f.srv.port(), "GET", "/healthz", hs)->status == 431);
  }
  SECTION("a long URL gets 414") { CHECK(fetch(f.srv.port(), "GET", "/" + std::string(20000, 'a'))->status == 414); }
  SECTION("a body over 10 MiB gets 413 before it is sent") {
    Client c(f.srv.port());
    c.send("POST /api/torrents HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-bittorrent\r\n"
           "Content-Length: 10485761\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(c.closed_within(2s));
  }
  SECTION("a chunked body over the limit gets 413") {
    Client c(f.srv.port());
    c.send("POST /api/torrents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "100000\r\n" + std::string(0x100000, 'd') + "\r\n";
    std::optional<ClientResponse> r;
    for (int i = 0; i < 12 && c.send(chunk); ++i) {
    }
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 413);
  }
  SECTION("an unknown method gets 501, a known one on the wrong route 405") {
    auto r = fetch(f.srv.port(), "FOO", "/healthz");
    REQUIRE(r);
    CHECK(r->status == 501);
    auto put = fetch(f.srv.port(), "PUT", "/api/torrents");
    REQUIRE(put);
    CHECK(put->status == 405);
    CHECK(put->header("allow").find("POST") != std::string::npos);
  }
  SECTION("Content-Length together with Transfer-Encoding gets 400") {
    Client c(f.srv.port());
    c.send("POST /api/torrents HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(c.closed_within(2s));
  }
  SECTION("garbage gets 400 and a bad version 505") {
    Client c(f.srv.port());
    c.send("\x01\x02 nonsense\r\n\r\n");
    auto r = c.read_response();
    REQUIRE(r);
    CHECK((r->status == 400 || r->status == 501));
    Client d(f.srv.port());
    d.send("GET / HTTP/7.5\r\n\r\n");
    auto v = d.read_response();
    REQUIRE(v);
    CHECK((v->status == 505 || v->status == 400));
  }
}

TEST_CASE("server: idle and slow-header connections are closed", "[server][timeouts]") {
  ServerLimits l;
  l.idle_timeout = 300ms;
  l.request_timeout = 600ms;
  Fixture f(l);
  Client idle(f.srv.port());
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(idle.closed_within(3s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);

  // Slowloris: a header byte every 50 ms keeps the socket busy but the request deadline still applies.
  Client slow(f.srv.port());
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + std::string(100, 'b');
  bool closed = false;
  const auto t1 = std::chrono::steady_clock::now();
  for (char ch : req) {
    if (!slow.send(std::string(1, ch))) {
      closed = true;
      break;
    }
    auto got = slow.recv_some(50ms);
    if (!got) {
      closed = true;
      break;
    }
  }
  CHECK(closed);
  CHECK(std::chrono::steady_clock::now() - t1 < 3s);
  CHECK(f.srv.on_io([&] { return f.srv.server().stats().timeouts; }) >= 2);

  // A keep-alive connection is closed after the idle time that follows a response.
  Client ka(f.srv.port());
  ka.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(ka.read_response());
  CHECK(ka.closed_within(3s));
}

TEST_CASE("stream: a source that never delivers is cut at the stall timeout", "[stream][timeouts]") {
  ServerLimits l;
  l.stall_timeout = 300ms;
  Fixture f(l);
  f.srv.on_io([&] {
    f.srv.backend().stall = true;
    return 0;
  });
  Client c(f.srv.port());
  c.send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.closed_within(3s));
  CHECK(f.srv.on_io([&] { return f.srv.server().stats().stream_stalls; }) == 1);
  // The reader is released (its pin with it).
  for (int i = 0; i < 100 && f.srv.on_io([&] { return f.srv.backend().stats.sources_open; }) != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(f.srv.on_io([&] { return f.srv.backend().stats.sources_open; }) == 0);
}

TEST_CASE("stream: a client that goes away releases its reader at once", "[stream]") {
  Fixture f;
  f.srv.on_io([&] {
    f.srv.backend().delay = 50ms;
    f.srv.backend().chunk = 1000;
    return 0;
  });
  {
    Client c(f.srv.port());
    c.send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(c.recv_some(2s));
  }
  int open = 1;
  for (int i = 0; i < 200 && open != 0; ++i) {
    std::this_thread::sleep_for(10ms);
    open = f.srv.on_io([&] { return f.srv.backend().stats.sources_open; });
  }
  CHECK(open == 0);
  CHECK(f.srv.on_io([&] { return f.srv.server().stats().streams_active; }) == 0);
}

TEST_CASE("stream: a slow reader gets backpressure, not buffering", "[stream][backpressure]") {
  const std::size_t size = 32u << 20;
  Fixture f({}, size);
  Client c(f.srv.port(), 64 * 1024);
  c.send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(800ms);  // read nothing: the socket buffers fill, the server must stop pulling
  const auto [reads, pending, maxlen] = f.srv.on_io([&] {
    const auto& s = f.srv.backend().stats;
    return std::tuple{s.reads, s.max_pending, s.max_read_len};
  });
  WARN("slow reader: bytes pulled from the source while the client slept: " << static_cast<std::uint64_t>(reads) * 64 * 1024);
  const std::uint64_t pulled = static_cast<std::uint64_t>(reads) * 64 * 1024;  // the fake's chunk is 64 KiB
  INFO("bytes pulled from the source while the client slept: " << pulled);
  CHECK(pulled < 12u << 20);  // kernel socket buffers only; far less than the 32 MiB file
  CHECK(pending == 1);        // one read at a time per stream
  CHECK(maxlen <= 256 * 1024);
  auto r = c.read_response(false, 60s);
  REQUIRE(r);
  CHECK(r->body.size() == size);
  CHECK(r->body == f.data);
}

TEST_CASE("stream: many concurrent streams are all byte-exact", "[stream]") {
  Fixture f;
  f.srv.on_io([&] {
    f.srv.backend().delay = 20ms;
    f.srv.backend().chunk = 16 * 1024;
    return 0;
  });
  constexpr int kClients = 48;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(f.srv.port()));
    const std::size_t first = static_cast<std::size_t>(i) * 7919;
    clients.back()->send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=" + std::to_string(first) + "-" +
                         std::to_string(first + 200'000 - 1) + "\r\n\r\n");
  }
  std::this_thread::sleep_for(100ms);  // each stream needs 13 chunks x 20 ms, so they overlap by now
  int peak = f.srv.on_io([&] { return static_cast<int>(f.srv.server().stats().streams_active); });
  for (int i = 0; i < kClients; ++i) {
    const std::size_t first = static_cast<std::size_t>(i) * 7919;
    auto r = clients[static_cast<std::size_t>(i)]->read_response(false, 30s);
    REQUIRE(r);
    CHECK(r->status == 206);
    CHECK(r->body == f.data.substr(first, 200'000));
  }
  INFO("streams active right after all requests were sent: " << peak);
  CHECK(peak >= kClients / 2);
}

TEST_CASE("server: connections over the limit get 503", "[server][limits]") {
  ServerLimits l;
  l.max_connections = 4;
  Fixture f(l);
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Client>(f.srv.port()));
    held.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(held.back()->read_response());
  }
  Client extra(f.srv.port());
  auto r = extra.read_response();
  REQUIRE(r);
  CHECK(r->status == 503);
  held.clear();
  for (int i = 0; i < 100 && f.srv.on_io([&] { return f.srv.server().stats().connections_active; }) != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  auto ok = fetch(f.srv.port(), "GET", "/healthz");
  REQUIRE(ok);
  CHECK(ok->status == 200);
}

TEST_CASE("curl: ranges, HEAD and a 100-continue upload through a real client", "[curl]") {
  REQUIRE(std::system("curl --version >/dev/null 2>&1") == 0);
  Fixture f;
  const auto dir = std::filesystem::temp_directory_path() / ("ph_http_curl_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string base = "http://127.0.0.1:" + std::to_string(f.srv.port());
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto run = [&](const std::string& args) {
    const std::string cmd = "curl -sS --max-time 20 " + args;
    return std::system(cmd.c_str());
  };
  REQUIRE(run("-o " + (dir / "full").string() + " '" + base + f.url + "'") == 0);
  CHECK(slurp(dir / "full") == f.data);
  REQUIRE(run("-r 1000-2999 -o " + (dir / "part").string() + " '" + base + f.url + "'") == 0);
  CHECK(slurp(dir / "part") == f.data.substr(1000, 2000));
  REQUIRE(run("-r -77 -o " + (dir / "tail").string() + " '" + base + f.url + "'") == 0);
  CHECK(slurp(dir / "tail") == f.data.substr(f.data.size() - 77));
  REQUIRE(run("-I -o " + (dir / "head").string() + " '" + base + f.url + "'") == 0);
  CHECK(slurp(dir / "head").find("Content-Length: " + std::to_string(f.data.size())) != std::string::npos);
  REQUIRE(run("-r 99999999- -o /dev/null -w '%{http_code}' '" + base + f.url + "' > " + (dir / "code").string()) == 0);
  CHECK(slurp(dir / "code") == "416");
  // A 2 MiB .torrent upload: curl sends Expect: 100-continue and waits for our interim response.
  {
    std::ofstream out(dir / "big.torrent", std::ios::binary);
    out << 'd' << std::string(2 << 20, 'x');
  }
  REQUIRE(run("-H 'Content-Type: application/x-bittorrent' -H 'Expect: 100-continue' --data-binary @" +
              (dir / "big.torrent").string() + " -o " + (dir / "add").string() + " -w '%{http_code} %{time_total}' '" +
              base + "/api/torrents' > " + (dir / "addcode").string()) == 0);
  const auto code = slurp(dir / "addcode");
  CHECK(code.substr(0, 3) == "201");
  CHECK(std::stod(code.substr(4)) < 0.9);  // no 1 s Expect wait: the 100 came at once
  CHECK(slurp(dir / "add").find("\"infoHash\"") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("stream: throughput of concurrent range requests served from memory", "[stream][throughput]") {
  Fixture f({}, 8u << 20);
  f.srv.on_io([&] {
    f.srv.backend().chunk = 256 * 1024;
    return 0;
  });
  constexpr int kClients = 8;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::future<bool>> done;
  for (int i = 0; i < kClients; ++i) {
    done.push_back(std::async(std::launch::async, [&f, i] {
      const std::size_t first = static_cast<std::size_t>(i) * 4096;
      Client c(f.srv.port());
      c.send("GET " + f.url + " HTTP/1.1\r\nHost: x\r\nRange: bytes=" + std::to_string(first) + "-\r\n\r\n");
      auto r = c.read_response(false, 120s);  // generous: sanitizer builds on a busy machine are slow
      return r && r->status == 206 && r->body.size() == f.data.size() - first &&
             r->body.compare(0, 4096, f.data, first, 4096) == 0;
    }));
  }
  int ok = 0;
  for (auto& d : done) ok += d.get() ? 1 : 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mib = kClients * 8.0;
  WARN("throughput: " << kClients << " concurrent streams, " << mib << " MiB in " << secs << " s = " << mib / secs
                      << " MiB/s");
  CHECK(ok == kClients);
}
