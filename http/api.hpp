// The application on top of the server: the JSON control API, /stream with Range, /metrics, /healthz and the
// embedded web page, all answered from a Backend. Also the security rules: Bearer token on /api when configured,
// CORS only for the one configured origin.
#pragma once

#include <string>

#include "http/backend.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace ph::http {

struct ApiOptions {
  std::string api_token;    // empty: /api needs no Authorization
  std::string cors_origin;  // empty: no CORS headers
};

class Api {
 public:
  Api(Backend& backend, ApiOptions options);

  // Where GET /metrics reads the server's own counters; may be set after construction (the server needs the Api's
  // handler first).
  void set_server_stats(const ServerStats* stats) { server_stats_ = stats; }

  Response handle(Request& req);
  Handler handler() {
    return [this](Request& r) { return handle(r); };
  }

 private:
  Response stream(Request& req, const Router::Params& p);
  Response metrics();
  Response web(Request& req, const Router::Params& p);
  bool authorized(const Request& req) const;

  Backend& backend_;
  ApiOptions options_;
  const ServerStats* server_stats_ = nullptr;
  Router router_;
};

// The JSON spellings of the backend structs (also used by tests to compare).
std::string stream_url(const InfoHash& hash, const FileInfo& file);
std::string etag_for(const InfoHash& hash, FileIndex file, std::uint64_t length);

}  // namespace ph::http
