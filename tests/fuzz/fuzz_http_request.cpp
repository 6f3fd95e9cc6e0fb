// libFuzzer target: HTTP requests as the server parses them. http::Connection is fused with its socket, so this
// harness feeds the server's own RequestParser (llhttp with the server's limits, Content-Length + Transfer-Encoding
// refused, one request at a time for pipelining), then does what dispatch() does with a parsed request: percent-decode
// the path, route it through a Router holding the API's patterns, and evaluate any Range header against a file
// length. Pipelined input is parsed request after request.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.hpp"
#include "http/range.hpp"
#include "http/request_parser.hpp"
#include "http/router.hpp"

namespace {

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
  ph::http::ParserLimits limits;
  limits.max_header_bytes = 4096;  // small caps so the fuzzer reaches them
  limits.max_url_bytes = 1024;
  limits.max_body_bytes = 4096;
  ph::http::RequestParser parser(limits);
  std::string_view left(reinterpret_cast<const char*>(data), size);
  for (int messages = 0; !left.empty() && messages < 64; ++messages) {
    const auto step = parser.feed(left);
    if (step.state != ph::http::RequestParser::State::complete) {
      // need_more, or failed: the server answers with the parser's status and closes.
      if (step.state == ph::http::RequestParser::State::failed &&
          (parser.error_status() < 400 || parser.error_status() > 599)) {
        __builtin_trap();
      }
      break;
    }
    if (step.consumed > left.size()) __builtin_trap();
    left.remove_prefix(step.consumed);
    dispatch(parser.request());
  }
  return 0;
}
