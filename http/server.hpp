// The HTTP/1.1 server: an Asio acceptor plus one Connection per client, parsing with llhttp. It owns everything a
// hostile or slow client could exhaust — connection count, header and body sizes, idle/request/write/stall timeouts,
// buffered pipelined input — and hands each complete request to one handler (the Api), one at a time per connection
// in arrival order, which is what makes pipelining correct.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>

#include "http/message.hpp"
#include "net/result.hpp"

namespace ph::http {

struct ServerLimits {
  std::size_t max_connections = 256;             // more are answered 503 and closed
  std::size_t max_url_bytes = 8 * 1024;          // longer request-target: 414
  std::size_t max_header_bytes = 32 * 1024;      // request line + header fields: beyond it 431
  std::size_t max_headers = 100;                 // more fields: 431
  std::size_t max_body_bytes = 10 * 1024 * 1024; // .torrent uploads; beyond it 413 before the body is read
  std::size_t max_pipelined_bytes = 64 * 1024;   // input read ahead while a response is being sent
  std::size_t stream_chunk_bytes = 256 * 1024;   // the most asked of a StreamSource per read
  std::chrono::milliseconds idle_timeout{30'000};     // keep-alive connection with no request
  std::chrono::milliseconds request_timeout{15'000};  // from a request's first byte to its last
  std::chrono::milliseconds write_timeout{30'000};    // one write to the client (slow readers)
  std::chrono::milliseconds stall_timeout{60'000};    // waiting for stream bytes that do not come
  std::chrono::milliseconds linger_timeout{2'000};    // draining input after a final response, before closing
};

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_rejected = 0;  // over max_connections
  std::uint64_t connections_active = 0;
  std::uint64_t streams_active = 0;
  std::uint64_t stream_bytes = 0;          // body bytes written from StreamSources
  std::uint64_t stream_stalls = 0;         // streams closed by the stall timeout
  std::uint64_t timeouts = 0;              // idle, request and write timeouts
  std::map<int, std::uint64_t> responses_by_status;
};

using Handler = std::function<Response(Request&)>;

// True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost".
bool is_loopback_host(std::string_view host);
// The rule main() enforces before listening: a non-loopback address requires an API token.
Result<void> check_listen_security(std::string_view host, std::string_view api_token);

class Connection;

class Server {
 public:
  Server(asio::io_context& io, Handler handler, ServerLimits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting; port 0 picks a free port (see port()).
  Result<void> listen(std::string_view host, std::uint16_t port);
  std::uint16_t port() const;
  // Stops accepting and closes every connection (streams are abandoned, their sources released).
  void stop();

  const ServerStats& stats() const { return stats_; }

 private:
  friend class Connection;
  void do_accept();
  void forget(Connection* c);

  asio::ip::tcp::acceptor acceptor_;
  Handler handler_;
  ServerLimits limits_;
  ServerStats stats_;
  std::unordered_set<std::shared_ptr<Connection>> connections_;
  bool stopped_ = false;
};

}  // namespace ph::http
