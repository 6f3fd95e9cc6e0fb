// Test-only trackers on loopback, honest and hostile: an HTTP server whose reply to each request is scripted by the
// test (full, chunked, dribbled byte by byte, never, redirecting), and a UDP tracker with misbehaving modes (silent,
// wrong transaction id, truncated, oversized, error). Shared by the tracker client and announcer tests.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/tracker_http.hpp"
#include "net/udp_tracker.hpp"

namespace ph::testing {

using Socket = std::shared_ptr<asio::ip::tcp::socket>;

inline std::string bencoded_peers_body(const std::vector<PeerAddress>& peers, std::int64_t interval,
                                       std::int64_t min_interval = -1) {
  std::string compact;
  for (const auto& p : peers) {
    compact.append(reinterpret_cast<const char*>(p.ip.data()), 4);
    compact += static_cast<char>(p.port >> 8);
    compact += static_cast<char>(p.port & 0xff);
  }
  std::string body = "d8:completei1e10:incompletei2e8:intervali" + std::to_string(interval) + "e";
  if (min_interval >= 0) body += "12:min intervali" + std::to_string(min_interval) + "e";
  body += "5:peers" + std::to_string(compact.size()) + ":" + compact + "e";
  return body;
}

inline std::string http_ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         body;
}

class FakeHttpServer {
  struct Dribbler {
    Dribbler(asio::io_context& io, Socket s, std::string bytes, std::chrono::milliseconds gap)
        : socket(std::move(s)), data(std::move(bytes)), timer(io), gap(gap) {}
    static void step(const std::shared_ptr<Dribbler>& self) {
      if (self->pos >= self->data.size()) return;
      asio::async_write(*self->socket, asio::buffer(self->data.data() + self->pos, 1),
                        [self](const asio::error_code& ec, std::size_t) {
                          if (ec) return;
                          ++self->pos;
                          self->timer.expires_after(self->gap);
                          self->timer.async_wait([self](const asio::error_code& tec) {
                            if (!tec) step(self);
                          });
                        });
    }
    Socket socket;
    std::string data;
    asio::steady_timer timer;
    std::chrono::milliseconds gap;
    std::size_t pos = 0;
  };

 public:
  // Called once per request with the connection and the request head (request line and headers).
  using Responder = std::function<void(Socket, const std::string& request)>;

  FakeHttpServer(asio::io_context& io, Responder responder, bool v6 = false)
      : acceptor_(io, asio::ip::tcp::endpoint(v6 ? asio::ip::address(asio::ip::address_v6::loopback())
                                                 : asio::ip::address(asio::ip::address_v4::loopback()),
                                              0)),
        responder_(std::move(responder)), v6_(v6) {
    accept();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path) const {
    return std::string("http://") + (v6_ ? "[::1]" : "127.0.0.1") + ":" + std::to_string(port()) + path;
  }
  const std::vector<std::string>& targets() const { return targets_; }  // request targets in arrival order

  // Writes everything, then closes.
  static void reply(Socket s, std::string bytes) {
    auto data = std::make_shared<std::string>(std::move(bytes));
    asio::async_write(*s, asio::buffer(*data), [s, data](const asio::error_code&, std::size_t) {
      asio::error_code ignored;
      s->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      s->close(ignored);
    });
  }

  // Writes one byte per `gap` until done or the peer goes away. The pending handlers own the state, so it ends
  // with the connection or the io_context.
  static void dribble(asio::io_context& io, Socket s, std::string bytes, std::chrono::milliseconds gap) {
    auto d = std::make_shared<Dribbler>(io, std::move(s), std::move(bytes), gap);
    Dribbler::step(d);
  }

 private:
  void accept() {
    acceptor_.async_accept([this](const asio::error_code& ec, asio::ip::tcp::socket sock) {
      if (ec) return;
      auto s = std::make_shared<asio::ip::tcp::socket>(std::move(sock));
      open_.push_back(s);
      auto buf = std::make_shared<std::string>();
      asio::async_read_until(*s, asio::dynamic_buffer(*buf), "\r\n\r\n",
                             [this, s, buf](const asio::error_code& rec, std::size_t n) {
                               if (rec) return;
                               std::string head = buf->substr(0, n);
                               auto sp1 = head.find(' ');
                               auto sp2 = head.find(' ', sp1 + 1);
                               targets_.push_back(head.substr(sp1 + 1, sp2 - sp1 - 1));
                               responder_(s, head);
                             });
      accept();
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  Responder responder_;
  bool v6_;
  std::vector<std::string> targets_;
  std::vector<Socket> open_;  // kept open so that "never answers" really never answers
};

class FakeUdpTracker {
 public:
  enum class Mode { normal, silent, wrong_transaction_id, truncated, oversized, error_reply, garbage };

  FakeUdpTracker(asio::io_context& io, bool v6 = false)
      : socket_(io, asio::ip::udp::endpoint(v6 ? asio::ip::address(asio::ip::address_v6::loopback())
                                                : asio::ip::address(asio::ip::address_v4::loopback()),
                                             0)),
        v6_(v6) {
    receive();
  }

  Mode mode = Mode::normal;
  std::vector<PeerAddress> peers;
  std::int64_t interval = 1800;
  std::vector<tracker::ScrapeEntry> scrape_entries;  // answered for every hash asked, in order
  std::vector<tracker::udp::Request> received;

  std::uint16_t port() const { return socket_.local_endpoint().port(); }
  std::string url() const {
    return std::string("udp://") + (v6_ ? "[::1]" : "127.0.0.1") + ":" + std::to_string(port()) + "/announce";
  }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buf_), from_, [this](const asio::error_code& ec, std::size_t n) {
      if (ec) return;
      auto req = tracker::udp::decode_request(std::string_view(buf_.data(), n));
      if (req) {
        received.push_back(*req);
        answer(*req);
      }
      receive();
    });
  }

  void answer(const tracker::udp::Request& r) {
    namespace udp = tracker::udp;
    std::uint32_t tid = r.transaction_id;
    std::string out;
    switch (mode) {
      case Mode::silent: return;
      case Mode::wrong_transaction_id: tid ^= 0x5a5a5a5a; break;
      default: break;
    }
    if (r.action == udp::Action::connect) {
      out = udp::encode_connect_reply(tid, 0x1234567890abcdefull);
    } else if (mode == Mode::error_reply) {
      out = udp::encode_error_reply(tid, "you are not welcome here");
    } else if (mode == Mode::garbage) {
      out = udp::encode_error_reply(tid, "junk");
      out[3] = 9;  // an action nobody defined
    } else if (r.action == udp::Action::announce) {
      std::vector<PeerAddress> list = peers;
      if (mode == Mode::oversized) list.assign(3000, peers.empty() ? PeerAddress::v4(0x01020304, 5) : peers[0]);
      out = udp::encode_announce_reply(tid, interval, 2, 1, list);
      if (mode == Mode::truncated) out.resize(13);
    } else if (r.action == udp::Action::scrape) {
      std::vector<tracker::ScrapeEntry> e = scrape_entries;
      e.resize(r.hashes.size());
      out = udp::encode_scrape_reply(tid, e);
      if (mode == Mode::truncated) out.resize(out.size() - 3);
    }
    auto data = std::make_shared<std::string>(std::move(out));
    socket_.async_send_to(asio::buffer(*data), from_, [data](const asio::error_code&, std::size_t) {});
  }

  asio::ip::udp::socket socket_;
  bool v6_;
  std::array<char, 2048> buf_{};
  asio::ip::udp::endpoint from_;
};

// Runs the io_context until `done()` or the deadline; returns whether done() became true.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    if (io.run_one_for(std::chrono::milliseconds(20)) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

}  // namespace ph::testing
