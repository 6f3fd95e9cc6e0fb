// Pure parts of the http layer: the RFC 9110 Range parser and If-Range, Content-Type by extension, the Prometheus
// text builder, the router's matching and traversal refusal, percent-coding and the listen-security rule.
#include <catch2/catch.hpp>

#include <algorithm>

#include "http/metrics.hpp"
#include "http/mime.hpp"
#include "http/range.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

using namespace ph::http;

namespace {
RangeDecision R(std::string_view h, std::uint64_t len = 1000) { return evaluate_range(h, len); }
ByteRange B(std::uint64_t a, std::uint64_t b) { return {a, b}; }
}  // namespace

TEST_CASE("range: single int-range, open range and suffix", "[range]") {
  CHECK(R("bytes=0-99").outcome == RangeOutcome::partial);
  CHECK(R("bytes=0-99").range == B(0, 99));
  CHECK(R("bytes=100-").range == B(100, 999));
  CHECK(R("bytes=-100").range == B(900, 999));
  CHECK(R("bytes=999-999").range == B(999, 999));
  CHECK(R("bytes=500-5000").range == B(500, 999));        // last-pos clamped to the length
  CHECK(R("bytes=-5000").range == B(0, 999));             // suffix longer than the file: all of it
  CHECK(R("BYTES=1-2").range == B(1, 2));                 // the unit is case-insensitive
  CHECK(R("bytes= 1-2 ").range == B(1, 2));
  CHECK(R("bytes=0-18446744073709551616").range == B(0, 999));  // overflow saturates, still satisfiable
}

TEST_CASE("range: unsatisfiable gives 416", "[range]") {
  CHECK(R("bytes=1000-").outcome == RangeOutcome::unsatisfiable);
  CHECK(R("bytes=1000-2000").outcome == RangeOutcome::unsatisfiable);
  CHECK(R("bytes=-0").outcome == RangeOutcome::unsatisfiable);
  CHECK(R("bytes=99999999999999999999999-").outcome == RangeOutcome::unsatisfiable);
  CHECK(R("bytes=1000-,2000-3000").outcome == RangeOutcome::unsatisfiable);
  CHECK(unsatisfied_range(1000) == "bytes */1000");
  CHECK(content_range(B(0, 99), 1000) == "bytes 0-99/1000");
}

TEST_CASE("range: invalid syntax and other units are ignored (200)", "[range]") {
  for (const char* h : {"bytes=abc", "bytes=10-5", "bytes=", "bytes", "items=0-5", "bytes=1-2-3", "bytes=--5",
                        "bytes=0x10-20", "bytes=5", "bytes=,,", "=0-5", "bytes=1-2,zz", "bytes=+1-2"}) {
    INFO(h);
    CHECK(R(h).outcome == RangeOutcome::full);
  }
}

TEST_CASE("range: several ranges are coalesced when they touch, else ignored", "[range]") {
  CHECK(R("bytes=0-10,5-20").range == B(0, 20));
  CHECK(R("bytes=0-10,11-20").range == B(0, 20));
  CHECK(R("bytes=50-60, 0-49").range == B(0, 60));
  CHECK(R("bytes=0-1,5-6").outcome == RangeOutcome::full);
  CHECK(R("bytes=0-1,2000-3000").range == B(0, 1));  // the unsatisfiable part is dropped
  std::string many = "bytes=0-0";
  for (int i = 1; i < 100; ++i) many += "," + std::to_string(i) + "-" + std::to_string(i);
  CHECK(R(many).outcome == RangeOutcome::full);  // more parts than max_ranges
}

TEST_CASE("range: an empty file has nothing to slice", "[range]") {
  CHECK(evaluate_range("bytes=0-", 0).outcome == RangeOutcome::full);
}

TEST_CASE("if-range: only a strong, equal entity tag matches", "[range]") {
  CHECK(if_range_matches("\"abc\"", "\"abc\""));
  CHECK(if_range_matches(" \"abc\" ", "\"abc\""));
  CHECK_FALSE(if_range_matches("W/\"abc\"", "\"abc\""));
  CHECK_FALSE(if_range_matches("\"abd\"", "\"abc\""));
  CHECK_FALSE(if_range_matches("Tue, 24 Nov 2026 04:00:00 GMT", "\"abc\""));
}

TEST_CASE("mime: media, subtitles and unknown extensions", "[mime]") {
  CHECK(mime_type("a/b/movie.mp4") == "video/mp4");
  CHECK(mime_type("Movie.MKV") == "video/x-matroska");
  CHECK(mime_type("x.webm") == "video/webm");
  CHECK(mime_type("x.avi") == "video/x-msvideo");
  CHECK(mime_type("x.mov") == "video/quicktime");
  CHECK(mime_type("x.mp3") == "audio/mpeg");
  CHECK(mime_type("x.m4a") == "audio/mp4");
  CHECK(mime_type("x.flac") == "audio/flac");
  CHECK(mime_type("x.srt") == "application/x-subrip; charset=utf-8");
  CHECK(mime_type("x.vtt") == "text/vtt; charset=utf-8");
  CHECK(mime_type("README") == "application/octet-stream");
  CHECK(mime_type("dir.mp4/file") == "application/octet-stream");
  CHECK(mime_type("x.") == "application/octet-stream");
  CHECK(mime_type("x.exe") == "application/octet-stream");
}

TEST_CASE("metrics: families keep HELP/TYPE once, labels escaped, integers exact", "[metrics]") {
  MetricsText m;
  m.counter("a_total", "A things", 123456789012345.0, {{"code", "200"}});
  m.gauge("b", "B \\ help\nline", 0.5);
  m.counter("a_total", "A things", 3, {{"code", "4\"0\\4\n"}});
  const auto s = m.str();
  CHECK(s == "# HELP a_total A things\n# TYPE a_total counter\na_total{code=\"200\"} 123456789012345\n"
             "a_total{code=\"4\\\"0\\\\4\\n\"} 3\n# HELP b B \\\\ help\\nline\n# TYPE b gauge\nb 0.5\n");
}

TEST_CASE("router: captures, optional tail, 405 with Allow, 501, traversal never matches", "[router]") {
  Router r;
  std::vector<std::string> seen;
  r.add("GET", "/stream/{h}/{i}/{name?}", [&](Request&, const Router::Params& p) {
    seen = p;
    return Response::text(200, "s");
  });
  r.add("POST", "/api/x", [](Request&, const Router::Params&) { return Response::text(200, "x"); });
  auto go = [&](std::string method, std::string path) {
    Request q;
    q.method = std::move(method);
    q.path = std::move(path);
    return r.route(q);
  };
  CHECK(go("GET", "/stream/a/1").status == 200);
  CHECK(seen == std::vector<std::string>{"a", "1", ""});
  CHECK(go("HEAD", "/stream/a/1/n.mp4").status == 200);
  CHECK(seen == std::vector<std::string>{"a", "1", "n.mp4"});
  CHECK(go("GET", "/stream/a").status == 404);
  CHECK(go("GET", "/stream/a/1/n/x").status == 404);
  CHECK(go("GET", "/stream/../..").status == 404);
  CHECK(go("GET", "/stream/a/1/..").status == 404);
  CHECK(go("GET", "/stream/a/./1").status == 404);
  CHECK(go("GET", "/stream//1/x").status == 404);
  auto m = go("GET", "/api/x");
  CHECK(m.status == 405);
  CHECK(std::find(m.headers.begin(), m.headers.end(), std::pair<std::string, std::string>{"Allow", "POST"}) !=
        m.headers.end());
  CHECK(go("BREW", "/api/x").status == 501);
}

TEST_CASE("message: percent-decoding and query parameters", "[message]") {
  CHECK(percent_decode("a%20b%2Fc").value() == "a b/c");
  CHECK_FALSE(percent_decode("a%2"));
  CHECK_FALSE(percent_decode("a%zz"));
  CHECK(percent_decode("a+b", true).value() == "a b");
  CHECK(percent_encode_segment("a b/ü.mp4") == "a%20b%2F%C3%BC.mp4");
  Request q;
  q.query = "x=1&deleteFiles=true&e=&n";
  CHECK(q.query_param("deleteFiles").value() == "true");
  CHECK(q.query_param("e").value().empty());
  CHECK(q.query_param("n").value().empty());
  CHECK_FALSE(q.query_param("missing"));
}

TEST_CASE("security: non-loopback binds need an API token", "[security]") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.8.9.10"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("[::1]"));
  CHECK(is_loopback_host("::ffff:127.0.0.1"));
  CHECK(is_loopback_host("localhost"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("::"));
  CHECK_FALSE(is_loopback_host("192.168.1.2"));
  CHECK_FALSE(is_loopback_host("example.com"));
  CHECK(check_listen_security("127.0.0.1", ""));
  CHECK(check_listen_security("0.0.0.0", "secret"));
  const auto r = check_listen_security("0.0.0.0", "");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("API_TOKEN") != std::string::npos);
}
