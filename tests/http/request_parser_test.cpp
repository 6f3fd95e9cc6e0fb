// RequestParser: requests split at every byte, pipelining, the limits and the status each refusal maps to.
#include "http/request_parser.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace ph::http;

namespace {

// Feeds `input` in pieces of `chunk` bytes, as a socket might deliver it, and collects the complete requests.
struct Fed {
  std::vector<Request> requests;
  int error_status = 0;
};

Fed feed_in_chunks(const std::string& input, std::size_t chunk, ParserLimits limits = {}) {
  RequestParser parser(limits);
  Fed out;
  std::string buffered;
  for (std::size_t at = 0; at < input.size() && out.error_status == 0; at += chunk) {
    buffered += input.substr(at, chunk);
    while (!buffered.empty()) {
      const auto step = parser.feed(buffered);
      if (step.state == RequestParser::State::failed) {
        out.error_status = parser.error_status();
        break;
      }
      if (step.state == RequestParser::State::need_more) {
        buffered.clear();
        break;
      }
      out.requests.push_back(parser.request());
      buffered.erase(0, step.consumed);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("request parser: pipelined requests, split at every byte", "[http]") {
  const std::string input =
      "GET /stream/abc/0?x=1 HTTP/1.1\r\nHost: a\r\nRange:  bytes=0-99 \r\n\r\n"
      "POST /api/torrents HTTP/1.1\r\nContent-Length: 5\r\nEXPECT: 100-Continue\r\n\r\nhello"
      "HEAD / HTTP/1.0\r\n\r\n";
  for (std::size_t chunk = 1; chunk <= input.size(); ++chunk) {
    INFO("chunk " << chunk);
    const Fed fed = feed_in_chunks(input, chunk);
    REQUIRE(fed.error_status == 0);
    REQUIRE(fed.requests.size() == 3);
    CHECK(fed.requests[0].method == "GET");
    CHECK(fed.requests[0].target == "/stream/abc/0?x=1");
    REQUIRE(fed.requests[0].header("range") != nullptr);
    CHECK(*fed.requests[0].header("range") == "bytes=0-99");  // names lower-cased, values trimmed
    CHECK(fed.requests[0].keep_alive);
    CHECK(fed.requests[1].method == "POST");
    CHECK(fed.requests[1].body == "hello");
    CHECK(fed.requests[2].method == "HEAD");
    CHECK_FALSE(fed.requests[2].keep_alive);  // HTTP/1.0 without keep-alive
  }
}

TEST_CASE("request parser: Expect: 100-continue is reported once the headers are in", "[http]") {
  RequestParser parser(ParserLimits{});
  int begun = 0;
  parser.on_message_begin = [&] { ++begun; };
  const auto step = parser.feed("PUT /x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  CHECK(step.state == RequestParser::State::need_more);
  CHECK(parser.expect_continue());
  CHECK(begun == 1);
  CHECK(parser.feed("abc").state == RequestParser::State::complete);
}

TEST_CASE("request parser: each refusal maps to its status", "[http]") {
  ParserLimits small;
  small.max_url_bytes = 64;
  small.max_header_bytes = 256;
  small.max_headers = 4;
  small.max_body_bytes = 16;
  struct Case {
    std::string input;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET /" + std::string(100, 'a') + " HTTP/1.1\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nX: " + std::string(300, 'v') + "\r\n\r\n", 431},
      {"GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n\r\n", 431},
      {"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + std::string(32, 'b') + "\r\n0\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"BREW / HTTP/1.1\r\n\r\n", 501},
      {"GET / HTTP/7.1\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400},
  };
  for (const auto& c : cases) {
    INFO(c.input.substr(0, 60));
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, c.input.size()}) {
      CHECK(feed_in_chunks(c.input, chunk, small).error_status == c.status);
    }
  }
  // A failed parser stays failed.
  RequestParser parser(small);
  CHECK(parser.feed("BREW / HTTP/1.1\r\n\r\n").state == RequestParser::State::failed);
  CHECK(parser.feed("GET / HTTP/1.1\r\n\r\n").state == RequestParser::State::failed);
}
