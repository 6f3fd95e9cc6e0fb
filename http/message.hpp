// Request and Response as the server's handlers see them: a parsed request (path already percent-decoded, header
// names lower-cased) and a response that is either a complete body or a byte range pulled from a StreamSource.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/backend.hpp"

namespace ph::http {

struct Request {
  std::string method;  // "GET", "HEAD", ...
  std::string target;  // as received
  std::string path;    // percent-decoded, without the query
  std::string query;   // raw, without '?'
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, values trimmed, in order
  std::string body;
  bool keep_alive = true;

  // The first header with this (lower-case) name.
  const std::string* header(std::string_view name) const;
  // A query parameter's percent-decoded value ('+' is a space), the first one if repeated.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // the server adds Content-Length, Connection, Server
  std::string body;

  // A streamed body: `stream_length` bytes from `stream` starting at `stream_offset`. The server pulls them chunk by
  // chunk and writes each straight from the source's span, so at most one chunk per connection is in flight.
  std::unique_ptr<StreamSource> stream;
  std::uint64_t stream_offset = 0;
  std::uint64_t stream_length = 0;

  Response& set(std::string name, std::string value) & {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
  Response&& set(std::string name, std::string value) && {
    headers.emplace_back(std::move(name), std::move(value));
    return std::move(*this);
  }
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response json(int status, std::string body);
  static Response error(int status, std::string_view message);  // {"error": message}
};

std::string_view status_reason(int status);
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);  // nullopt on bad escapes
std::string percent_encode_segment(std::string_view s);  // for building URLs: unreserved bytes kept, rest %XX

}  // namespace ph::http
