// RequestParser: llhttp callbacks that build a Request within the limits, and the mapping of parse failures to
// the status a client should get.
#include "http/request_parser.hpp"

#include "net/text.hpp"

namespace ph::http {

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::message_begin;
  settings_.on_url = &RequestParser::url;
  settings_.on_header_field = &RequestParser::header_field;
  settings_.on_header_value = &RequestParser::header_value;
  settings_.on_headers_complete = &RequestParser::headers_complete;
  settings_.on_body = &RequestParser::body;
  settings_.on_message_complete = &RequestParser::message_complete;
  llhttp_init(&parser_, HTTP_REQUEST, &settings_);
  parser_.data = this;
}

RequestParser::Step RequestParser::feed(std::string_view input) {
  if (error_status_ != 0) return {State::failed, 0};
  if (input.empty()) return {State::need_more, 0};
  const auto err = llhttp_execute(&parser_, input.data(), input.size());
  if (err == HPE_OK) return {State::need_more, input.size()};  // all consumed; llhttp keeps its state
  if (err == HPE_PAUSED) {
    // Paused in message_complete: the bytes after the pause point belong to the next (pipelined) request.
    const auto used = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - input.data());
    llhttp_resume(&parser_);
    return {State::complete, used};
  }
  set_error(err);
  return {State::failed, 0};
}

void RequestParser::set_error(llhttp_errno_t err) {
  error_status_ = 400;
  const char* reason = llhttp_get_error_reason(&parser_);
  error_reason_ = reason ? reason : "bad request";
  switch (fail_) {
    case Fail::header_too_large: error_status_ = 431; error_reason_ = "request header fields too large"; break;
    case Fail::url_too_long: error_status_ = 414; error_reason_ = "request target too long"; break;
    case Fail::body_too_large: error_status_ = 413; error_reason_ = "request body too large"; break;
    case Fail::bad_request: break;
    case Fail::none:
      if (err == HPE_INVALID_METHOD) {
        error_status_ = 501;
        error_reason_ = "method not implemented";
      } else if (err == HPE_INVALID_VERSION) {
        error_status_ = 505;
        error_reason_ = "HTTP version not supported";
      }
      break;
  }
}

int RequestParser::message_begin(llhttp_t* p) {
  RequestParser& r = of(p);
  r.req_ = Request{};
  r.header_bytes_ = 0;
  r.last_was_value_ = false;
  r.expect_continue_ = false;
  r.fail_ = Fail::none;
  if (r.on_message_begin) r.on_message_begin();
  return 0;
}

int RequestParser::url(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& r = of(p);
  r.req_.target.append(at, n);
  r.header_bytes_ += n;
  if (r.req_.target.size() > r.limits_.max_url_bytes) {
    r.fail_ = Fail::url_too_long;
    return -1;
  }
  return 0;
}

bool RequestParser::count_header_bytes(std::size_t n) {
  header_bytes_ += n;
  if (header_bytes_ > limits_.max_header_bytes || req_.headers.size() > limits_.max_headers) {
    fail_ = Fail::header_too_large;
    return false;
  }
  return true;
}

int RequestParser::header_field(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& r = of(p);
  if (r.req_.headers.empty() || r.last_was_value_) r.req_.headers.emplace_back();
  r.last_was_value_ = false;
  r.req_.headers.back().first.append(at, n);
  return r.count_header_bytes(n) ? 0 : -1;
}

int RequestParser::header_value(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& r = of(p);
  if (r.req_.headers.empty()) r.req_.headers.emplace_back();
  r.last_was_value_ = true;
  r.req_.headers.back().second.append(at, n);
  return r.count_header_bytes(n) ? 0 : -1;
}

int RequestParser::headers_complete(llhttp_t* p) {
  RequestParser& r = of(p);
  Request& req = r.req_;
  bool has_length = false, has_te = false;
  for (auto& [k, v] : req.headers) {
    k = text::ascii_lower(k);
    v = std::string(text::trim(v));
    has_length |= k == "content-length";
    has_te |= k == "transfer-encoding";
    if (k == "expect" && text::ascii_lower(v) == "100-continue") r.expect_continue_ = true;
  }
  if (has_length && has_te) {  // request smuggling vector (RFC 9112 6.1): refuse outright
    r.fail_ = Fail::bad_request;
    llhttp_set_error_reason(p, "both Content-Length and Transfer-Encoding");
    return -1;
  }
  if (has_length && p->content_length > r.limits_.max_body_bytes) {
    r.fail_ = Fail::body_too_large;
    return -1;
  }
  req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
  req.keep_alive = llhttp_should_keep_alive(p) != 0;
  return 0;
}

int RequestParser::body(llhttp_t* p, const char* at, std::size_t n) {
  RequestParser& r = of(p);
  if (r.req_.body.size() + n > r.limits_.max_body_bytes) {
    r.fail_ = Fail::body_too_large;
    return -1;
  }
  r.req_.body.append(at, n);
  return 0;
}

int RequestParser::message_complete(llhttp_t* p) {
  of(p).req_.keep_alive = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

}  // namespace ph::http
