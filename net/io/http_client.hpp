// A small HTTP/1.1 GET client on Asio for tracker announces and scrapes: llhttp parses the response (so chunked and
// close-delimited bodies both work), redirects are followed at most `max_redirects` times, the response size is
// capped, one deadline bounds the whole exchange (a server dribbling one byte a second still times out), and https
// goes through asio::ssl with OpenSSL (SNI and host-name verification).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "net/result.hpp"

namespace asio::ssl {
class context;
}

namespace ph::net {

struct HttpClientOptions {
  std::chrono::milliseconds timeout{20'000};  // the whole request, redirects included
  std::size_t max_body_bytes = 2u << 20;       // trackers answer in kilobytes; more is hostile
  std::size_t max_header_bytes = 16u << 10;
  int max_redirects = 3;
  std::string user_agent = "Playhead/0.1";
  bool verify_tls = true;  // verify the server certificate against the system store and the host name
  std::string ca_file;     // extra trusted CA certificates (PEM), e.g. a private tracker's own CA
};

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string url;  // the URL that finally answered (after redirects)
  int redirects = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, in order

  const std::string* header(std::string_view lowercase_name) const;
};

class HttpClient {
 public:
  using Handler = std::function<void(Result<HttpResponse>)>;
  using RequestId = std::uint64_t;

  explicit HttpClient(asio::io_context& io, HttpClientOptions options = {});
  ~HttpClient();  // cancels every request still running; their handlers are not called
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a GET. The handler runs once on the io_context (any status code is a success; transport, parse, size,
  // redirect and timeout problems are errors), unless the request is cancelled first.
  RequestId get(std::string url, Handler handler);
  void cancel(RequestId id);

  const HttpClientOptions& options() const { return options_; }

 private:
  class Request;
  asio::io_context& io_;
  HttpClientOptions options_;
  std::shared_ptr<asio::ssl::context> tls_;
  RequestId next_id_ = 1;
  std::map<RequestId, std::weak_ptr<Request>> requests_;
};

}  // namespace ph::net
