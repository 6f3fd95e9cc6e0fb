// HttpClient and TrackerClient against trackers on loopback written here: honest ones over HTTP, UDP, IPv4 and IPv6,
// and hostile ones (never answers, dribbles bytes, redirects forever, oversized, malformed, wrong transaction ids).
// Every wait is bounded by run_until.
#include "net/io/tracker_client.hpp"

#include <unistd.h>

#include <asio/ssl.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "net/tracker_fakes.hpp"

using namespace ph;
using namespace ph::net;
using namespace ph::testing;
using namespace std::chrono_literals;

namespace {

tracker::AnnounceRequest request() {
  tracker::AnnounceRequest r;
  r.info_hash = InfoHash::from_bytes("0123456789abcdefghij");
  r.peer_id = PeerId::from_bytes("-PH0001-000000000000");
  r.port = 6881;
  r.left = 1000;
  r.event = tracker::Event::started;
  return r;
}

TrackerClientOptions fast_options() {
  TrackerClientOptions o;
  o.http.timeout = 800ms;
  o.udp.retransmit_base = 50ms;
  o.udp.max_retransmits = 2;
  return o;
}

struct Outcome {
  std::optional<Result<tracker::AnnounceResponse>> result;
  bool done() const { return result.has_value(); }
  std::string error() const { return result && !result->ok() ? result->error().message : std::string(); }
};

Outcome announce_once(asio::io_context& io, TrackerClient& client, const std::string& url,
                      std::chrono::milliseconds limit = 5s) {
  Outcome o;
  client.announce(url, request(), [&o](Result<tracker::AnnounceResponse> r) { o.result.emplace(std::move(r)); });
  run_until(io, [&] { return o.done(); }, limit);
  return o;
}

std::vector<PeerAddress> two_peers() {
  return {PeerAddress::parse("127.0.0.1:7001").value(), PeerAddress::parse("127.0.0.2:7002").value()};
}

}  // namespace

TEST_CASE("tracker client announces over HTTP and sends the BEP 3 query") {
  asio::io_context io;
  FakeHttpServer server(io, [](Socket s, const std::string&) {
    FakeHttpServer::reply(s, http_ok(bencoded_peers_body(two_peers(), 900, 300)));
  });
  TrackerClient client(io, fast_options());
  auto o = announce_once(io, client, server.url("/announce"));
  REQUIRE(o.done());
  REQUIRE(o.result->ok());
  CHECK((*o.result)->interval == 900);
  CHECK((*o.result)->min_interval == 300);
  CHECK((*o.result)->peers == two_peers());
  REQUIRE(server.targets().size() == 1);
  const auto& target = server.targets()[0];
  CHECK(target.rfind("/announce?info_hash=0123456789abcdefghij&peer_id=-PH0001-000000000000&port=6881", 0) == 0);
  CHECK(target.find("&event=started") != std::string::npos);
  CHECK(target.find("&compact=1") != std::string::npos);
}

TEST_CASE("tracker client: HTTP over IPv6 loopback, chunked and close-delimited bodies") {
  asio::io_context io;
  const std::string body = bencoded_peers_body(two_peers(), 60);
  FakeHttpServer chunked(io, [&](Socket s, const std::string&) {
    std::string half1 = body.substr(0, 10), half2 = body.substr(10);
    char h1[16], h2[16];
    std::snprintf(h1, sizeof h1, "%zx", half1.size());
    std::snprintf(h2, sizeof h2, "%zx", half2.size());
    FakeHttpServer::reply(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(h1) + "\r\n" + half1 +
                                 "\r\n" + h2 + "\r\n" + half2 + "\r\n0\r\n\r\n");
  }, true);
  FakeHttpServer close_delimited(io, [&](Socket s, const std::string&) {
    FakeHttpServer::reply(s, "HTTP/1.0 200 OK\r\n\r\n" + body);
  });
  TrackerClient client(io, fast_options());
  auto a = announce_once(io, client, chunked.url("/announce"));
  REQUIRE(a.done());
  INFO(a.error());
  REQUIRE(a.result->ok());
  CHECK((*a.result)->peers.size() == 2);
  CHECK(chunked.url("/").find("[::1]") != std::string::npos);
  auto b = announce_once(io, client, close_delimited.url("/announce"));
  REQUIRE(b.done());
  INFO(b.error());
  REQUIRE(b.result->ok());
  CHECK((*b.result)->interval == 60);
}

TEST_CASE("tracker client: a response arriving one byte per read is parsed whole") {
  asio::io_context io;
  const std::string body = bencoded_peers_body(two_peers(), 61);
  FakeHttpServer slow(io, [&](Socket s, const std::string&) {
    s->set_option(asio::ip::tcp::no_delay(true));
    std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (char c : body) chunked += std::string("1\r\n") + c + "\r\n";
    FakeHttpServer::dribble(io, s, chunked + "0\r\n\r\n", 1ms);
  });
  auto o = fast_options();
  o.http.timeout = 10s;
  TrackerClient client(io, o);
  auto r = announce_once(io, client, slow.url("/announce"), 15s);
  REQUIRE(r.done());
  INFO(r.error());
  REQUIRE(r.result->ok());
  CHECK((*r.result)->interval == 61);
  CHECK((*r.result)->peers == two_peers());
}

TEST_CASE("tracker client follows up to 3 redirects and refuses the 4th") {
  asio::io_context io;
  int hops = 0;
  std::string final_url;
  std::unique_ptr<FakeHttpServer> server;
  server = std::make_unique<FakeHttpServer>(io, [&](Socket s, const std::string& head) {
    if (head.rfind("GET /final", 0) == 0) {
      return FakeHttpServer::reply(s, http_ok(bencoded_peers_body(two_peers(), 60)));
    }
    ++hops;
    // /r3 -> /r2 -> /r1 -> /final; /loop -> /loop forever.
    std::string next = "/loop";
    if (head.rfind("GET /r3", 0) == 0) next = server->url("/r2");  // absolute
    if (head.rfind("GET /r2", 0) == 0) next = "/r1";               // absolute path
    if (head.rfind("GET /r1", 0) == 0) next = "final";             // relative
    FakeHttpServer::reply(s, "HTTP/1.1 302 Found\r\nLocation: " + next + "\r\nContent-Length: 0\r\n\r\n");
  });
  TrackerClient client(io, fast_options());
  auto ok = announce_once(io, client, server->url("/r3"));
  REQUIRE(ok.done());
  INFO(ok.error());
  REQUIRE(ok.result->ok());
  CHECK(hops == 3);

  hops = 0;
  auto loop = announce_once(io, client, server->url("/loop"));
  REQUIRE(loop.done());
  CHECK(loop.error() == "too many redirects (more than 3)");
  CHECK(hops == 4);
}

TEST_CASE("tracker client: hostile HTTP trackers fail with clear errors within the timeout") {
  asio::io_context io;
  TrackerClient client(io, fast_options());
  auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::steady_clock::now() - started; };

  SECTION("never answers") {
    FakeHttpServer server(io, [](Socket, const std::string&) {});
    auto o = announce_once(io, client, server.url("/announce"));
    REQUIRE(o.done());
    CHECK(o.error() == "timed out after 800 ms");
    CHECK(elapsed() < 3s);
  }
  SECTION("answers one byte every 100 ms") {
    FakeHttpServer server(io, [&](Socket s, const std::string&) {
      FakeHttpServer::dribble(io, s, http_ok(bencoded_peers_body(two_peers(), 60)), 100ms);
    });
    auto o = announce_once(io, client, server.url("/announce"));
    REQUIRE(o.done());
    CHECK(o.error() == "timed out after 800 ms");
    CHECK(elapsed() < 3s);
  }
  SECTION("malformed bencode") {
    FakeHttpServer server(io, [](Socket s, const std::string&) { FakeHttpServer::reply(s, http_ok("d8:intervali1")); });
    auto o = announce_once(io, client, server.url("/announce"));
    REQUIRE(o.done());
    CHECK(o.error().find("malformed announce response") == 0);
  }
  SECTION("failure reason") {
    FakeHttpServer server(io, [](Socket s, const std::string&) {
      FakeHttpServer::reply(s, http_ok("d14:failure reason17:torrent not founde"));
    });
    auto o = announce_once(io, client, server.url("/announce"));
    CHECK(o.error() == "tracker failure: torrent not found");
  }
  SECTION("oversized body by Content-Length and by chunks") {
    FakeHttpServer by_length(io, [](Socket s, const std::string&) {
      FakeHttpServer::reply(s, "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nd");
    });
    auto a = announce_once(io, client, by_length.url("/announce"));
    CHECK(a.error().find("exceeds the cap") != std::string::npos);
    FakeHttpServer by_chunks(io, [](Socket s, const std::string&) {
      std::string chunks;
      for (int i = 0; i < 600; ++i) chunks += "1000\r\n" + std::string(0x1000, 'x') + "\r\n";
      FakeHttpServer::reply(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n");
    });
    auto patient_options = fast_options();
    patient_options.http.timeout = 20s;  // 2.4 MB through a sanitizer build on a loaded machine takes a while
    TrackerClient patient(io, patient_options);
    auto b = announce_once(io, patient, by_chunks.url("/announce"), 25s);
    CHECK(b.error() == "response body exceeds the cap of 2097152 bytes");
  }
  SECTION("not HTTP at all, and a 404") {
    FakeHttpServer junk(io, [](Socket s, const std::string&) { FakeHttpServer::reply(s, "SSH-2.0-OpenSSH\r\n"); });
    auto a = announce_once(io, client, junk.url("/announce"));
    CHECK(a.error().find("bad HTTP response") == 0);
    FakeHttpServer missing(io, [](Socket s, const std::string&) {
      FakeHttpServer::reply(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
    });
    auto b = announce_once(io, client, missing.url("/announce"));
    CHECK(b.error() == "HTTP status 404: not found");
  }
  SECTION("nothing listening") {
    asio::ip::tcp::acceptor probe(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    auto port = probe.local_endpoint().port();
    probe.close();
    auto o = announce_once(io, client, "http://127.0.0.1:" + std::to_string(port) + "/announce");
    CHECK(o.error().find("cannot connect to 127.0.0.1:") == 0);
  }
  SECTION("bad urls") {
    CHECK(announce_once(io, client, "gopher://x/announce").error() == "unsupported url scheme 'gopher'");
    CHECK(announce_once(io, client, "udp://127.0.0.1/announce").error() == "udp tracker url needs a port");
  }
}

TEST_CASE("tracker client: HTTP scrape uses the /scrape convention") {
  asio::io_context io;
  FakeHttpServer server(io, [](Socket s, const std::string&) {
    FakeHttpServer::reply(s, http_ok("d5:filesd20:0123456789abcdefghijd8:completei4e10:downloadedi9e10:incompletei2eeee"));
  });
  TrackerClient client(io, fast_options());
  std::optional<Result<tracker::ScrapeResponse>> got;
  client.scrape(server.url("/announce"), {request().info_hash}, [&](auto r) { got.emplace(std::move(r)); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }, 5s));
  REQUIRE(got->ok());
  REQUIRE((*got)->files.size() == 1);
  CHECK((*got)->files[0].complete == 4);
  CHECK((*got)->files[0].downloaded == 9);
  CHECK(server.targets().at(0) == "/scrape?info_hash=0123456789abcdefghij");
}

TEST_CASE("tracker client announces and scrapes over UDP, IPv4 and IPv6") {
  asio::io_context io;
  bool v6 = GENERATE(false, true);
  FakeUdpTracker tracker(io, v6);
  tracker.peers = v6 ? std::vector<PeerAddress>{PeerAddress::parse("[::1]:7001").value()} : two_peers();
  tracker.interval = 777;
  TrackerClient client(io, fast_options());
  auto o = announce_once(io, client, tracker.url());
  REQUIRE(o.done());
  INFO(o.error());
  REQUIRE(o.result->ok());
  CHECK((*o.result)->interval == 777);
  CHECK((*o.result)->peers == tracker.peers);
  CHECK((*o.result)->complete == 1);
  CHECK((*o.result)->incomplete == 2);
  REQUIRE(tracker.received.size() == 2);
  CHECK(tracker.received[1].announce.event == tracker::Event::started);

  tracker.scrape_entries.resize(1);
  tracker.scrape_entries[0].complete = 3;
  tracker.scrape_entries[0].downloaded = 5;
  std::optional<Result<tracker::ScrapeResponse>> got;
  client.scrape(tracker.url(), {request().info_hash}, [&](auto r) { got.emplace(std::move(r)); });
  REQUIRE(run_until(io, [&] { return got.has_value(); }, 5s));
  REQUIRE(got->ok());
  CHECK((*got)->files.at(0).complete == 3);
  CHECK((*got)->files.at(0).downloaded == 5);
  // The connection id was reused: one connect, one announce, one scrape.
  CHECK(tracker.received.size() == 3);
}

TEST_CASE("tracker client: hostile UDP trackers") {
  asio::io_context io;
  FakeUdpTracker tracker(io);
  TrackerClient client(io, fast_options());
  using Mode = FakeUdpTracker::Mode;
  struct Case {
    Mode mode;
    std::string error;
  };
  const Case cases[] = {
      {Mode::silent, "udp tracker did not answer connect (3 attempts, timed out)"},
      {Mode::wrong_transaction_id, "udp tracker did not answer connect (3 attempts, timed out)"},
      {Mode::truncated, "udp tracker: truncated announce reply (13 bytes, need 20); the tracker may not track this "
                        "torrent"},
      {Mode::oversized, "udp tracker sent an oversized reply (8193 bytes)"},
      {Mode::error_reply, "udp tracker error: you are not welcome here"},
      {Mode::garbage, "udp tracker: udp tracker reply with unknown action 9"},
  };
  for (const auto& c : cases) {
    tracker.mode = c.mode;
    auto t0 = std::chrono::steady_clock::now();
    auto o = announce_once(io, client, tracker.url());
    INFO(static_cast<int>(c.mode));
    REQUIRE(o.done());
    CHECK(o.error() == c.error);
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);  // 50 + 100 + 200 ms of retransmissions at most
  }
  // After all that the same client still works against a well-behaved tracker.
  tracker.mode = Mode::normal;
  auto ok = announce_once(io, client, tracker.url());
  REQUIRE(ok.done());
  CHECK(ok.result->ok());
}

TEST_CASE("tracker client: cancel and destruction silence the handler") {
  asio::io_context io;
  FakeHttpServer server(io, [](Socket, const std::string&) {});
  FakeUdpTracker udp(io);
  udp.mode = FakeUdpTracker::Mode::silent;
  int calls = 0;
  {
    TrackerClient client(io, fast_options());
    auto a = client.announce(server.url("/announce"), request(), [&](auto) { ++calls; });
    client.announce(udp.url(), request(), [&](auto) { ++calls; });
    client.announce(server.url("/announce"), request(), [&](auto) { ++calls; });
    client.cancel(a);
    run_until(io, [] { return false; }, 100ms);
  }
  run_until(io, [] { return false; }, 1200ms);
  CHECK(calls == 0);
}

namespace {

// A one-response-per-connection HTTPS server with a self-signed certificate for 127.0.0.1 made by the openssl tool.
struct TlsServer {
  explicit TlsServer(asio::io_context& io, std::string body)
      : acceptor(io, asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(), 0)), body(std::move(body)) {
    dir = std::filesystem::temp_directory_path() / ("ph-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    cert = (dir / "cert.pem").string();
    const std::string key = (dir / "key.pem").string();
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                            " -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
    made = std::system(cmd.c_str()) == 0;
    if (!made) return;
    ctx.use_certificate_chain_file(cert);
    ctx.use_private_key_file(key, asio::ssl::context::pem);
    accept();
  }
  ~TlsServer() { std::filesystem::remove_all(dir); }

  void accept() {
    acceptor.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
      if (ec) return;
      auto stream = std::make_shared<asio::ssl::stream<asio::ip::tcp::socket>>(std::move(sock), ctx);
      stream->async_handshake(asio::ssl::stream_base::server, [this, stream](const asio::error_code& hec) {
        if (hec) return;
        auto buf = std::make_shared<std::string>();
        asio::async_read_until(*stream, asio::dynamic_buffer(*buf), "\r\n\r\n",
                               [this, stream, buf](const asio::error_code& rec, std::size_t) {
                                 if (rec) return;
                                 ++requests;
                                 auto resp = std::make_shared<std::string>(http_ok(body));
                                 asio::async_write(*stream, asio::buffer(*resp),
                                                   [stream, resp](const asio::error_code&, std::size_t) {
                                                     stream->async_shutdown([stream](const asio::error_code&) {});
                                                   });
                               });
      });
      accept();
    });
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/announce"; }

  asio::ssl::context ctx{asio::ssl::context::tls_server};
  asio::ip::tcp::acceptor acceptor;
  std::string body;
  std::filesystem::path dir;
  std::string cert;
  bool made = false;
  int requests = 0;
};

}  // namespace

TEST_CASE("tracker client: HTTPS trackers, with certificate verification") {
  asio::io_context io;
  TlsServer server(io, bencoded_peers_body(two_peers(), 120));
  REQUIRE(server.made);  // the openssl tool is part of the build environment (tools/setup.sh)

  SECTION("trusted through ca_file: verified and answered") {
    auto o = fast_options();
    o.http.ca_file = server.cert;
    TrackerClient client(io, o);
    auto r = announce_once(io, client, server.url());
    REQUIRE(r.done());
    INFO(r.error());
    REQUIRE(r.result->ok());
    CHECK((*r.result)->interval == 120);
    CHECK((*r.result)->peers == two_peers());
  }
  SECTION("self-signed and not trusted: refused") {
    TrackerClient client(io, fast_options());
    auto r = announce_once(io, client, server.url());
    REQUIRE(r.done());
    CHECK(r.error().rfind("TLS handshake: ", 0) == 0);
    CHECK(r.error().find("certificate verify failed") != std::string::npos);
    CHECK(server.requests == 0);
  }
  SECTION("verification off: answered") {
    auto o = fast_options();
    o.http.verify_tls = false;
    TrackerClient client(io, o);
    auto r = announce_once(io, client, server.url());
    REQUIRE(r.done());
    INFO(r.error());
    CHECK(r.result->ok());
  }
}
