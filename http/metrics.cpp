// Prometheus text formatting: escaping rules for HELP text and label values, and integer-looking numbers printed
// without an exponent so that byte counters stay exact.
#include "http/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace ph::http {
namespace {

std::string escape(std::string_view s, bool quote) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

}  // namespace

MetricsText& MetricsText::counter(std::string_view name, std::string_view help, double value, const Labels& labels) {
  return add("counter", name, help, value, labels);
}

MetricsText& MetricsText::gauge(std::string_view name, std::string_view help, double value, const Labels& labels) {
  return add("gauge", name, help, value, labels);
}

MetricsText& MetricsText::add(std::string_view type, std::string_view name, std::string_view help, double value,
                              const Labels& labels) {
  Family* fam = nullptr;
  for (auto& f : families_) {
    if (f.name == name) fam = &f;
  }
  if (!fam) {
    families_.push_back({std::string(name), escape(help, false), std::string(type), {}});
    fam = &families_.back();
  }
  fam->samples += fam->name;
  if (!labels.empty()) {
    fam->samples += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) fam->samples += ',';
      fam->samples += labels[i].first + "=\"" + escape(labels[i].second, true) + "\"";
    }
    fam->samples += '}';
  }
  fam->samples += ' ' + number(value) + '\n';
  return *this;
}

std::string MetricsText::str() const {
  std::string out;
  for (const auto& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n" + f.samples;
  }
  return out;
}

}  // namespace ph::http
