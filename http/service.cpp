// HttpService wiring; see service.hpp.
#include "http/service.hpp"

namespace ph::http {

HttpService::HttpService(asio::io_context& io, Backend& backend, const Config& config, ServerLimits limits)
    : host_(config.http_host),
      port_(config.http_port),
      token_(config.api_token),
      api_(backend, ApiOptions{config.api_token, config.cors_origin}),
      server_(io, api_.handler(), limits) {
  api_.set_server_stats(&server_.stats());
}

Result<void> HttpService::start() {
  if (auto r = check_listen_security(host_, token_); !r) return r;
  return server_.listen(host_, port_);
}

std::string HttpService::url() const {
  const bool v6 = host_.find(':') != std::string::npos && host_.front() != '[';
  return "http://" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port()) + "/";
}

}  // namespace ph::http
