// Maps a method and a decoded path to a handler. Patterns are '/'-separated segments: literals, `{name}` captures
// one segment, a trailing `{name?}` an optional one. Paths with "." or ".." segments or empty inner segments never
// match anything, so no URL can be read as a filesystem path. A path that matches with another method gives 405
// with Allow; HEAD is served by GET routes.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace ph::http {

class Router {
 public:
  using Params = std::vector<std::string>;  // the captured segments in pattern order ("" for an absent optional)
  using RouteHandler = std::function<Response(Request&, const Params&)>;

  void add(std::string method, std::string_view pattern, RouteHandler handler);
  Response route(Request& req) const;

  static std::vector<std::string_view> split_path(std::string_view path);  // empty vector for "/"

 private:
  struct Segment {
    std::string text;
    bool capture = false;
    bool optional = false;
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    RouteHandler handler;
  };
  static bool match(const Route& r, const std::vector<std::string_view>& parts, Params& params);
  std::vector<Route> routes_;
};

}  // namespace ph::http
