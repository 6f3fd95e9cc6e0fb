// The HTTP side of `playhead` in one object: checks the listen-security rule, builds the Api over a Backend and
// starts the Server where the Config says. What main() needs is construct, start(), and stop() on shutdown.
#pragma once

#include <asio.hpp>
#include <memory>
#include <string>

#include "engine/config.hpp"
#include "http/api.hpp"
#include "http/backend.hpp"
#include "http/server.hpp"

namespace ph::http {

class HttpService {
 public:
  HttpService(asio::io_context& io, Backend& backend, const Config& config, ServerLimits limits = {});

  // Refuses a non-loopback HTTP_HOST without API_TOKEN, then listens on HTTP_HOST:HTTP_PORT.
  Result<void> start();
  void stop() { server_.stop(); }

  std::uint16_t port() const { return server_.port(); }
  std::string url() const;  // "http://127.0.0.1:8080/" (IPv6 hosts in brackets)
  const ServerStats& stats() const { return server_.stats(); }

 private:
  std::string host_;
  std::uint16_t port_;
  std::string token_;
  Api api_;
  Server server_;
};

}  // namespace ph::http
