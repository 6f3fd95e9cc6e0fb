#include "net/bencode.hpp"

#include <cstring>
#include <limits>

namespace ph::bencode {

const char* type_name(Type t) {
  switch (t) {
    case Type::integer: return "integer";
    case Type::string: return "string";
    case Type::list: return "list";
    case Type::dict: return "dict";
  }
  return "?";
}

namespace {
std::string hex_byte(unsigned char c) {
  static constexpr char digits[] = "0123456789abcdef";
  return std::string{'0', 'x', digits[c >> 4], digits[c & 15]};
}
}  // namespace

std::string DecodeError::to_string() const { return "bencode: at byte " + std::to_string(offset) + ": " + message; }

// ---- Decoder --------------------------------------------------------------------------------------------------

namespace {

struct Frame {
  std::uint32_t token;     // the list/dict token
  std::uint32_t count;     // elements so far (for dicts: keys + values)
  std::uint32_t key_pos;   // dicts: offset and length of the previous key's content, for the ordering check
  std::uint32_t key_len;
  bool is_dict;
};

std::string found_byte(char c) {
  // Built with append: g++ 12 at -O2 reports a false -Wrestrict on `"'" + std::string(1, c)` (GCC PR 105329).
  const auto u = static_cast<unsigned char>(c);
  std::string out;
  if (u >= 32 && u < 127) {
    out += '\'';
    out += c;
    out += '\'';
  } else {
    out += "byte ";
    out += hex_byte(u);
  }
  return out;
}

}  // namespace

// One pass, no recursion: containers are tracked on an explicit stack bounded by limits.max_depth. Hot-path notes
// (measured with bench/codec_bench.cpp): the token vector is reserved from the input size so it rarely grows, the
// stack is sized once, and "is this value a dict key?" is decided where the value is parsed, so the per-value
// bookkeeping after it is a single increment.
Result<Document> decode_impl(std::string_view in, const DecodeLimits& limits, DecodeError* detail,
                             std::size_t* consumed) {
  Document doc;
  doc.input_ = in;
  using Token = Document::Token;
  auto make_token = [](Type type, std::size_t start, std::size_t end, std::uint32_t next) {
    Token t;
    t.integer = 0;
    t.start = static_cast<std::uint32_t>(start);
    t.end = static_cast<std::uint32_t>(end);
    t.next = next;
    t.type = type;
    return t;
  };
  auto fail = [&](std::size_t offset, std::string message) -> Result<Document> {
    DecodeError e{offset, std::move(message)};
    if (detail) *detail = e;
    return make_error(e.to_string());
  };
  if (in.size() > std::numeric_limits<std::uint32_t>::max() - 1) return fail(0, "input larger than 4 GiB");
  if (in.empty()) return fail(0, "expected a value, found end of input");

  const char* const base = in.data();
  const std::size_t n = in.size();
  std::size_t pos = 0;
  // Each open container consumed a byte, so the depth can never exceed n whatever the limit says.
  const std::size_t stack_size = std::min<std::size_t>(limits.max_depth, n);
  std::vector<Frame> stack(stack_size);
  std::size_t depth = 0;
  auto& tokens = doc.tokens_;
  // Every value takes at least two bytes; real torrents average far more (piece hashes), so n / 8 covers them in
  // one allocation, and the reservation is only address space until written.
  tokens.reserve(std::min<std::size_t>(n / 8 + 16, limits.max_tokens));
  const std::uint32_t max_tokens = limits.max_tokens;
  const bool sorted = limits.require_sorted_keys;

  do {
    if (pos >= n) {
      return fail(pos, depth == 0 ? "expected a value, found end of input"
                                  : "unterminated " + std::string(stack[depth - 1].is_dict ? "dict" : "list") +
                                        " (started at byte " + std::to_string(tokens[stack[depth - 1].token].start) +
                                        "): expected a value or 'e', found end of input");
    }
    if (tokens.size() >= max_tokens) return fail(pos, "too many values (limit " + std::to_string(max_tokens) + ")");
    const char c = base[pos];
    const auto index = static_cast<std::uint32_t>(tokens.size());
    // True when the value starting here is a dict key (dicts alternate key, value).
    const bool at_key = depth != 0 && stack[depth - 1].is_dict && (stack[depth - 1].count & 1) == 0;

    if (c >= '0' && c <= '9') {
      const std::size_t start = pos;
      std::uint64_t len = static_cast<std::uint64_t>(c - '0');
      if (len > n) return fail(start, "string length " + std::string(1, c) + "... is longer than the input");
      ++pos;
      while (pos < n && base[pos] >= '0' && base[pos] <= '9') {
        len = len * 10 + static_cast<std::uint64_t>(base[pos] - '0');
        if (len > n) return fail(start, "string length " + std::string(base + start, pos + 1 - start) + "... is longer than the input");
        ++pos;
      }
      if (c == '0' && pos - start > 1) return fail(start, "string length has a leading zero");
      if (pos >= n) return fail(pos, "unterminated string length: expected ':'");
      if (base[pos] != ':') return fail(pos, "expected ':' after string length");
      ++pos;
      if (len > n - pos) {
        return fail(start, "string of length " + std::to_string(len) + " runs past the end of input (" +
                               std::to_string(n - pos) + " bytes left)");
      }
      const auto body = static_cast<std::uint32_t>(pos);
      pos += len;
      if (at_key) {
        Frame& f = stack[depth - 1];
        if (sorted && f.count != 0) {
          const std::string_view prev(base + f.key_pos, f.key_len);
          const std::string_view key(base + body, len);
          if (!(prev < key)) return fail(start, "dict keys must be in strictly ascending order without duplicates");
        }
        f.key_pos = body;
        f.key_len = static_cast<std::uint32_t>(len);
      }
      Token t = make_token(Type::string, start, pos, index + 1);
      t.body = body;
      tokens.push_back(t);
    } else if (c == 'e') {
      if (depth == 0) return fail(pos, "unexpected 'e': no list or dict is open");
      const Frame& f = stack[--depth];
      auto& t = tokens[f.token];
      if (f.is_dict && (f.count & 1) != 0) return fail(pos, "dict key has no value: expected a value before 'e'");
      ++pos;
      t.end = static_cast<std::uint32_t>(pos);
      t.next = index;
      t.body = f.is_dict ? f.count / 2 : f.count;
    } else if (c == 'l' || c == 'd') {
      if (depth >= limits.max_depth) return fail(pos, "nesting deeper than " + std::to_string(limits.max_depth) + " levels");
      if (at_key) return fail(pos, "expected a string dict key, found a " + std::string(c == 'l' ? "list" : "dict"));
      tokens.push_back(make_token(c == 'l' ? Type::list : Type::dict, pos, 0, 0));
      stack[depth++] = Frame{index, 0, 0, 0, c == 'd'};
      ++pos;
      continue;  // the container is counted in its parent when it closes
    } else if (c == 'i') {
      const std::size_t start = pos++;
      bool negative = false;
      if (pos < n && base[pos] == '-') {
        negative = true;
        ++pos;
      }
      const std::size_t digits_start = pos;
      std::uint64_t magnitude = 0;
      while (pos < n && base[pos] >= '0' && base[pos] <= '9') {
        const std::uint64_t d = static_cast<std::uint64_t>(base[pos] - '0');
        if (magnitude > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
          return fail(start, "integer does not fit in 64 bits");
        }
        magnitude = magnitude * 10 + d;
        ++pos;
      }
      if (pos == digits_start) return fail(pos, pos >= n ? "unterminated integer: expected a digit" : "expected a digit in integer");
      if (pos >= n) return fail(pos, "unterminated integer: expected 'e'");
      if (base[pos] != 'e') return fail(pos, "expected 'e' to end the integer");
      if (base[digits_start] == '0' && pos - digits_start > 1) return fail(digits_start, "integer has a leading zero");
      if (negative && magnitude == 0) return fail(start, "'-0' is not a valid integer");
      std::int64_t value;
      if (negative) {
        if (magnitude > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1) {
          return fail(start, "integer does not fit in 64 bits");
        }
        value = static_cast<std::int64_t>(0 - magnitude);
      } else {
        if (magnitude > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          return fail(start, "integer does not fit in 64 bits");
        }
        value = static_cast<std::int64_t>(magnitude);
      }
      if (at_key) return fail(start, "expected a string dict key, found an integer");
      ++pos;
      Token t = make_token(Type::integer, start, pos, index + 1);
      t.integer = value;
      tokens.push_back(t);
    } else {
      return fail(pos, "expected 'i', 'l', 'd' or a string length, found " + found_byte(c));
    }
    // A value (scalar or closed container) is complete: count it in its parent.
    if (depth != 0) ++stack[depth - 1].count;
  } while (depth != 0);

  if (consumed) {
    *consumed = pos;
  } else if (pos != n) {
    return fail(pos, "trailing data after the value (" + std::to_string(n - pos) + " bytes)");
  }
  return doc;
}

Result<Document> decode(std::string_view input, const DecodeLimits& limits, DecodeError* detail) {
  return decode_impl(input, limits, detail, nullptr);
}

Result<Document> decode_prefix(std::string_view input, std::size_t* consumed, const DecodeLimits& limits,
                               DecodeError* detail) {
  std::size_t used = 0;
  auto r = decode_impl(input, limits, detail, &used);
  if (r.ok() && consumed) *consumed = used;
  return r;
}

// ---- Node -----------------------------------------------------------------------------------------------------

Type Node::type() const { return doc_->tokens_[index_].type; }
std::int64_t Node::as_int() const { return doc_->tokens_[index_].integer; }
std::string_view Node::as_string() const {
  const auto& t = doc_->tokens_[index_];
  return doc_->input_.substr(t.body, t.end - t.body);
}
std::string_view Node::raw() const {
  if (!doc_) return {};
  const auto& t = doc_->tokens_[index_];
  return doc_->input_.substr(t.start, t.end - t.start);
}
std::size_t Node::offset() const { return doc_ ? doc_->tokens_[index_].start : 0; }
std::uint32_t Node::next_index() const { return doc_->tokens_[index_].next; }

std::size_t Node::size() const {
  if (!doc_ || (type() != Type::list && type() != Type::dict)) return 0;
  return doc_->tokens_[index_].body;
}

Node Node::at(std::size_t i) const {
  if (!is_list()) return {};
  for (Node n : list()) {
    if (i-- == 0) return n;
  }
  return {};
}

Node Node::find(std::string_view key) const {
  if (!is_dict()) return {};
  for (auto [k, v] : dict()) {
    if (k == key) return v;
  }
  return {};
}

std::optional<std::int64_t> Node::find_int(std::string_view key) const {
  Node n = find(key);
  if (n.is_int()) return n.as_int();
  return std::nullopt;
}

std::optional<std::string_view> Node::find_string(std::string_view key) const {
  Node n = find(key);
  if (n.is_string()) return n.as_string();
  return std::nullopt;
}

Node Node::find_list(std::string_view key) const {
  Node n = find(key);
  return n.is_list() ? n : Node();
}

Node Node::find_dict(std::string_view key) const {
  Node n = find(key);
  return n.is_dict() ? n : Node();
}

Node::ListRange Node::list() const {
  if (!is_list()) return {ListIterator(nullptr, 0), ListIterator(nullptr, 0)};
  return {ListIterator(doc_, index_ + 1), ListIterator(doc_, next_index())};
}

Node::DictRange Node::dict() const {
  if (!is_dict()) return {DictIterator(nullptr, 0), DictIterator(nullptr, 0)};
  return {DictIterator(doc_, index_ + 1), DictIterator(doc_, next_index())};
}

Node::ListIterator& Node::ListIterator::operator++() {
  index_ = doc_->tokens_[index_].next;
  return *this;
}

std::pair<std::string_view, Node> Node::DictIterator::operator*() const {
  Node key(doc_, index_);
  return {key.as_string(), Node(doc_, doc_->tokens_[index_].next)};
}

Node::DictIterator& Node::DictIterator::operator++() {
  const std::uint32_t value = doc_->tokens_[index_].next;
  index_ = doc_->tokens_[value].next;
  return *this;
}

// ---- Encoding -------------------------------------------------------------------------------------------------

Encoder& Encoder::integer(std::int64_t v) {
  out_ += 'i';
  out_ += std::to_string(v);
  out_ += 'e';
  return *this;
}

Encoder& Encoder::string(std::string_view s) {
  out_ += std::to_string(s.size());
  out_ += ':';
  out_ += s;
  return *this;
}

Encoder& Encoder::raw(std::string_view already_encoded) {
  out_ += already_encoded;
  return *this;
}

Encoder& Encoder::begin_list() {
  out_ += 'l';
  return *this;
}
Encoder& Encoder::begin_dict() {
  out_ += 'd';
  return *this;
}
Encoder& Encoder::end() {
  out_ += 'e';
  return *this;
}

Value Value::from(Node n) {
  if (!n) return Value();
  switch (n.type()) {
    case Type::integer: return Value(n.as_int());
    case Type::string: return Value(n.as_string());
    case Type::list: {
      List l;
      for (Node e : n.list()) l.push_back(from(e));
      return Value(std::move(l));
    }
    case Type::dict: {
      Dict d;
      for (auto [k, v] : n.dict()) d.emplace(std::string(k), from(v));
      return Value(std::move(d));
    }
  }
  return Value();
}

void Value::encode_to(std::string& out) const {
  Encoder e(out);
  if (auto* i = std::get_if<std::int64_t>(&v)) {
    e.integer(*i);
  } else if (auto* s = std::get_if<std::string>(&v)) {
    e.string(*s);
  } else if (auto* l = std::get_if<List>(&v)) {
    e.begin_list();
    for (const auto& x : *l) x.encode_to(out);
    e.end();
  } else if (auto* d = std::get_if<Dict>(&v)) {
    e.begin_dict();
    for (const auto& [k, x] : *d) {
      e.string(k);
      x.encode_to(out);
    }
    e.end();
  }
}

std::string Value::encode() const {
  std::string out;
  encode_to(out);
  return out;
}

// ---- Pretty printing ------------------------------------------------------------------------------------------

namespace {

bool printable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 32 && c != '\n' && c != '\t') return false;
    if (c == 127) return false;
  }
  return true;  // UTF-8 bytes >= 128 are shown as text
}

void quote(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  out += '"';
}

// Recursive, so the depth is capped here too: a document decoded with a generous max_depth must not overflow the
// stack (or print gigabytes of indentation) when shown.
constexpr int kMaxPrintDepth = 128;

void print(std::string& out, Node n, int indent, std::size_t max_bytes) {
  if (indent >= kMaxPrintDepth && (n.is_list() || n.is_dict())) {
    out += n.is_list() ? "[...]" : "{...}";
    return;
  }
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  switch (n.type()) {
    case Type::integer: out += std::to_string(n.as_int()); break;
    case Type::string: {
      std::string_view s = n.as_string();
      if (printable(s)) {
        quote(out, s.substr(0, max_bytes));
        if (s.size() > max_bytes) out += "... (" + std::to_string(s.size()) + " bytes)";
      } else {
        static constexpr char digits[] = "0123456789abcdef";
        out += "<hex ";
        for (std::size_t i = 0; i < s.size() && i < max_bytes; ++i) {
          out += digits[static_cast<unsigned char>(s[i]) >> 4];
          out += digits[static_cast<unsigned char>(s[i]) & 15];
        }
        if (s.size() > max_bytes) out += "...";
        out += "> (" + std::to_string(s.size()) + " bytes)";
      }
      break;
    }
    case Type::list: {
      if (n.size() == 0) {
        out += "[]";
        break;
      }
      out += "[\n";
      for (Node e : n.list()) {
        out += pad + "  ";
        print(out, e, indent + 1, max_bytes);
        out += "\n";
      }
      out += pad + "]";
      break;
    }
    case Type::dict: {
      if (n.size() == 0) {
        out += "{}";
        break;
      }
      out += "{\n";
      for (auto [k, v] : n.dict()) {
        out += pad + "  ";
        quote(out, k);
        out += ": ";
        print(out, v, indent + 1, max_bytes);
        out += "\n";
      }
      out += pad + "}";
      break;
    }
  }
}

}  // namespace

std::string to_debug_string(Node n, std::size_t max_string_bytes) {
  std::string out;
  if (n) print(out, n, 0, max_string_bytes);
  return out;
}

}  // namespace ph::bencode
