// A small builder for the Prometheus text exposition format (version 0.0.4): HELP and TYPE once per metric family,
// label values escaped, families kept together in the order first added.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ph::http {

class MetricsText {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  MetricsText& counter(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  MetricsText& gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  std::string str() const;

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Family {
    std::string name, help, type, samples;
  };
  MetricsText& add(std::string_view type, std::string_view name, std::string_view help, double value,
                   const Labels& labels);
  std::vector<Family> families_;
};

}  // namespace ph::http
