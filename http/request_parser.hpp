// RequestParser: HTTP/1.1 request parsing on llhttp, with the limits that keep a hostile client from exhausting
// memory (request-target, header bytes and count, body size) and the refusals that keep requests unambiguous (both
// Content-Length and Transfer-Encoding). It stops after each complete request, so pipelined input is handled one
// request at a time. Asio-free: the server feeds it from its socket, the fuzzer from raw bytes.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace ph::http {

struct ParserLimits {
  std::size_t max_url_bytes = 8 * 1024;       // longer request-target: 414
  std::size_t max_header_bytes = 32 * 1024;   // request line + header fields: beyond it 431
  std::size_t max_headers = 100;              // more fields: 431
  std::size_t max_body_bytes = 10u << 20;     // beyond it 413, before the body is read when Content-Length says so
};

class RequestParser {
 public:
  enum class State { need_more, complete, failed };
  struct Step {
    State state;
    std::size_t consumed;  // input bytes used; after `complete`, the rest belongs to the next request
  };

  explicit RequestParser(ParserLimits limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses input, keeping its state between calls. After `complete`, request() holds the request until the next
  // feed(); after `failed`, error_status()/error_reason() say what to answer, and the parser must not be fed again.
  Step feed(std::string_view input);

  Request& request() { return req_; }
  // The current request asked for "Expect: 100-continue" (valid once its headers are complete).
  bool expect_continue() const { return expect_continue_; }
  int error_status() const { return error_status_; }
  const std::string& error_reason() const { return error_reason_; }

  // Called at the first byte of every request (the server arms its request timeout there).
  std::function<void()> on_message_begin;

 private:
  enum class Fail { none, bad_request, header_too_large, url_too_long, body_too_large };

  static RequestParser& of(llhttp_t* p) { return *static_cast<RequestParser*>(p->data); }
  static int message_begin(llhttp_t* p);
  static int url(llhttp_t* p, const char* at, std::size_t n);
  static int header_field(llhttp_t* p, const char* at, std::size_t n);
  static int header_value(llhttp_t* p, const char* at, std::size_t n);
  static int headers_complete(llhttp_t* p);
  static int body(llhttp_t* p, const char* at, std::size_t n);
  static int message_complete(llhttp_t* p);
  bool count_header_bytes(std::size_t n);
  void set_error(llhttp_errno_t err);

  ParserLimits limits_;
  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  Request req_;
  std::size_t header_bytes_ = 0;
  bool last_was_value_ = false;
  bool expect_continue_ = false;
  Fail fail_ = Fail::none;
  int error_status_ = 0;
  std::string error_reason_;
};

}  // namespace ph::http
