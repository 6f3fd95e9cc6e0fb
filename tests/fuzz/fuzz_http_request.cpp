// libFuzzer target: HTTP requests as the server handles them. http::Connection is fused with its socket, so this
// harness drives llhttp with the same callbacks and limits server.cpp uses (URL/header caps, header count,
// Content-Length + Transfer-Encoding refused, body cap, pause per message for pipelining), then does what dispatch()
// does with a parsed request: percent-decode the path, route it through a Router holding the API's patterns, and
// evaluate any Range header against a file length. Pipelined input is parsed message after message.
#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "http/range.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace {

struct State {
  ph::http::ServerLimits limits;
  ph::http::Request req;
  std::size_t header_bytes = 0;
  bool last_was_value = false;
  bool failed = false;
};

State* st(llhttp_t* p) { return static_cast<State*>(p->data); }

bool count(State* s, std::size_t n) {
  s->header_bytes += n;
  if (s->header_bytes > s->limits.max_header_bytes || s->req.headers.size() > s->limits.max_headers) {
    s->failed = true;
    return false;
  }
  return true;
}

const ph::http::Router& router() {
  static const ph::http::Router r = [] {
    ph::http::Router r;
    auto ok = [](ph::http::Request&, const ph::http::Router::Params& p) {
      std::string body;
      for (const auto& s : p) body += s + "/";
      return ph::http::Response::text(200, body);
    };
    r.add("GET", "/", ok);
    r.add("GET", "/stream/{hash}/{file}", ok);
    r.add("GET", "/api/torrents", ok);
    r.add("POST", "/api/torrents", ok);
    r.add("GET", "/api/torrents/{hash}", ok);
    r.add("DELETE", "/api/torrents/{hash}", ok);
    r.add("POST", "/api/torrents/{hash}/{action}", ok);
    r.add("GET", "/static/{name?}", ok);
    r.add("GET", "/metrics", ok);
    return r;
  }();
  return r;
}

void dispatch(ph::http::Request& req) {
  const auto q = req.target.find('?');
  const std::string_view raw_path = std::string_view(req.target).substr(0, q);
  if (q != std::string::npos) req.query = req.target.substr(q + 1);
  auto decoded = ph::http::percent_decode(raw_path);
  if (!decoded || decoded->find('\0') != std::string::npos || raw_path.empty() || raw_path.front() != '/') return;
  req.path = *decoded;
  (void)req.query_param("delete_files");
  auto resp = router().route(req);
  if (resp.status < 100 || resp.status > 599) __builtin_trap();
  // A routed path never contains a "." or ".." segment: that is what keeps URLs from naming files.
  if (resp.status == 200)
    for (auto seg : ph::http::Router::split_path(req.path))
      if (seg == "." || seg == "..") __builtin_trap();
  if (const auto* range = req.header("range")) {
    const auto d = ph::http::evaluate_range(*range, 1'000'000);
    if (d.outcome == ph::http::RangeOutcome::partial && d.range.last >= 1'000'000) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  State s;
  s.limits.max_header_bytes = 4096;  // small caps so the fuzzer reaches them
  s.limits.max_url_bytes = 1024;
  s.limits.max_body_bytes = 4096;
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_begin = [](llhttp_t* p) {
    auto* s = st(p);
    s->req = ph::http::Request{};
    s->header_bytes = 0;
    s->last_was_value = false;
    return 0;
  };
  settings.on_url = [](llhttp_t* p, const char* at, std::size_t n) {
    auto* s = st(p);
    s->req.target.append(at, n);
    s->header_bytes += n;
    if (s->req.target.size() > s->limits.max_url_bytes) return (s->failed = true), -1;
    return 0;
  };
  settings.on_header_field = [](llhttp_t* p, const char* at, std::size_t n) {
    auto* s = st(p);
    if (s->req.headers.empty() || s->last_was_value) s->req.headers.emplace_back();
    s->last_was_value = false;
    s->req.headers.back().first.append(at, n);
    return count(s, n) ? 0 : -1;
  };
  settings.on_header_value = [](llhttp_t* p, const char* at, std::size_t n) {
    auto* s = st(p);
    if (s->req.headers.empty()) s->req.headers.emplace_back();
    s->last_was_value = true;
    s->req.headers.back().second.append(at, n);
    return count(s, n) ? 0 : -1;
  };
  settings.on_headers_complete = [](llhttp_t* p) {
    auto* s = st(p);
    bool has_length = false, has_te = false;
    for (auto& [k, v] : s->req.headers) {
      for (auto& ch : k) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
      has_length |= k == "content-length";
      has_te |= k == "transfer-encoding";
    }
    if (has_length && has_te) return (s->failed = true), -1;
    if (has_length && p->content_length > s->limits.max_body_bytes) return (s->failed = true), -1;
    s->req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
    return 0;
  };
  settings.on_body = [](llhttp_t* p, const char* at, std::size_t n) {
    auto* s = st(p);
    if (s->req.body.size() + n > s->limits.max_body_bytes) return (s->failed = true), -1;
    s->req.body.append(at, n);
    return 0;
  };
  settings.on_message_complete = [](llhttp_t* p) {
    st(p)->req.keep_alive = llhttp_should_keep_alive(p) != 0;
    return static_cast<int>(HPE_PAUSED);
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  parser.data = &s;
  const char* at = reinterpret_cast<const char*>(data);
  std::size_t left = size;
  for (int messages = 0; left > 0 && messages < 64; ++messages) {
    const auto err = llhttp_execute(&parser, at, left);
    if (err == HPE_PAUSED) {
      const auto used = static_cast<std::size_t>(llhttp_get_error_pos(&parser) - at);
      if (used > left) __builtin_trap();
      at += used;
      left -= used;
      llhttp_resume(&parser);
      dispatch(s.req);
      continue;
    }
    break;  // HPE_OK (needs more input) or an error: the server answers 4xx and closes
  }
  return 0;
}
