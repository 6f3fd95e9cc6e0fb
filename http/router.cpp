// Segment matching for Router; see router.hpp for the rules.
#include "http/router.hpp"

namespace ph::http {

std::vector<std::string_view> Router::split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty()) {
    const auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) parts.emplace_back();  // a trailing '/' is an empty last segment
  }
  return parts;
}

void Router::add(std::string method, std::string_view pattern, RouteHandler handler) {
  Route r{std::move(method), {}, std::move(handler)};
  for (auto part : split_path(pattern)) {
    Segment s;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      s.capture = true;
      part = part.substr(1, part.size() - 2);
      if (!part.empty() && part.back() == '?') {
        s.optional = true;
        part.remove_suffix(1);
      }
    }
    s.text = std::string(part);
    r.segments.push_back(std::move(s));
  }
  routes_.push_back(std::move(r));
}

bool Router::match(const Route& r, const std::vector<std::string_view>& parts, Params& params) {
  params.clear();
  std::size_t i = 0;
  for (const auto& seg : r.segments) {
    if (i >= parts.size()) {
      if (!seg.optional) return false;
      params.emplace_back();
      continue;
    }
    if (seg.capture) {
      params.emplace_back(parts[i]);
    } else if (seg.text != parts[i]) {
      return false;
    }
    ++i;
  }
  return i == parts.size();
}

Response Router::route(Request& req) const {
  const auto parts = split_path(req.path);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto p = parts[i];
    if (p == "." || p == ".." || (p.empty() && i + 1 < parts.size()) || p.find('\\') != std::string_view::npos) {
      return Response::error(404, "not found");
    }
  }
  Params params;
  std::string allow;
  for (const auto& r : routes_) {
    if (!match(r, parts, params)) continue;
    if (r.method == req.method || (req.method == "HEAD" && r.method == "GET")) return r.handler(req, params);
    if (allow.find(r.method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + r.method;
  }
  if (!allow.empty()) {
    if (allow.find("GET") != std::string::npos) allow += ", HEAD";
    static constexpr std::string_view kKnown[] = {"GET", "HEAD", "POST", "DELETE", "OPTIONS", "PUT", "PATCH"};
    bool known = false;
    for (auto m : kKnown) known |= req.method == m;
    if (!known) return Response::error(501, "method not implemented").set("Allow", allow);
    return Response::error(405, "method not allowed").set("Allow", allow);
  }
  return Response::error(404, "not found");
}

}  // namespace ph::http
