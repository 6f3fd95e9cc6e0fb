// Bencode (BEP 3): a strict, bounded, zero-copy decoder and an encoder.
//
// decode() turns a byte buffer into a Document: a flat array of tokens that point into the buffer (the caller keeps
// the buffer alive as long as the Document and its Nodes). Every value keeps its exact raw bytes (Node::raw), which is
// what the info-hash is computed over. Limits (depth, token count, sorted keys) are parameters with safe defaults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "net/result.hpp"

namespace ph::bencode {

enum class Type : std::uint8_t { integer, string, list, dict };
const char* type_name(Type t);

struct DecodeLimits {
  std::uint32_t max_depth = 64;          // nesting of lists and dicts
  std::uint32_t max_tokens = 4'000'000;  // values in the whole document
  bool require_sorted_keys = true;       // BEP 3: keys are sorted as raw strings, no duplicates
};

struct DecodeError {
  std::size_t offset = 0;
  std::string message;  // says what was expected, e.g. "expected ':' after string length"
  std::string to_string() const;  // "at byte N: message"
};

class Document;

// A view of one value inside a Document. A default-constructed Node is "absent" (operator bool is false); lookups
// that miss return an absent Node, so chains like doc.root().find("info").find("name") are safe.
class Node {
 public:
  Node() = default;

  explicit operator bool() const { return doc_ != nullptr; }
  Type type() const;
  bool is_int() const { return doc_ && type() == Type::integer; }
  bool is_string() const { return doc_ && type() == Type::string; }
  bool is_list() const { return doc_ && type() == Type::list; }
  bool is_dict() const { return doc_ && type() == Type::dict; }

  std::int64_t as_int() const;           // precondition: is_int()
  std::string_view as_string() const;    // precondition: is_string()
  std::string_view raw() const;          // the exact encoded bytes of this value
  std::size_t offset() const;            // where raw() starts in the input

  // Lists and dicts: number of elements (O(n)), positional access, dict lookup by key (O(n), dicts are small).
  std::size_t size() const;
  Node at(std::size_t index) const;
  Node find(std::string_view key) const;
  std::optional<std::int64_t> find_int(std::string_view key) const;
  std::optional<std::string_view> find_string(std::string_view key) const;
  Node find_list(std::string_view key) const;  // absent unless present and a list
  Node find_dict(std::string_view key) const;  // absent unless present and a dict

  // Iteration. Lists yield Nodes; dicts yield (key, value) pairs.
  class ListIterator;
  class DictIterator;
  struct ListRange;
  struct DictRange;
  ListRange list() const;  // empty unless is_list()
  DictRange dict() const;  // empty unless is_dict()

 private:
  friend class Document;
  Node(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
  std::uint32_t next_index() const;

  const Document* doc_ = nullptr;
  std::uint32_t index_ = 0;
};

class Node::ListIterator {
 public:
  ListIterator(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
  Node operator*() const { return Node(doc_, index_); }
  ListIterator& operator++();
  bool operator==(const ListIterator& o) const { return index_ == o.index_; }

 private:
  const Document* doc_;
  std::uint32_t index_;
};

class Node::DictIterator {
 public:
  DictIterator(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
  std::pair<std::string_view, Node> operator*() const;
  DictIterator& operator++();
  bool operator==(const DictIterator& o) const { return index_ == o.index_; }

 private:
  const Document* doc_;
  std::uint32_t index_;  // the key token
};

struct Node::ListRange {
  ListIterator b, e;
  ListIterator begin() const { return b; }
  ListIterator end() const { return e; }
};
struct Node::DictRange {
  DictIterator b, e;
  DictIterator begin() const { return b; }
  DictIterator end() const { return e; }
};

class Document {
 public:
  Node root() const { return tokens_.empty() ? Node() : Node(this, 0); }
  std::string_view input() const { return input_; }
  std::size_t token_count() const { return tokens_.size(); }

 private:
  friend class Node;
  friend Result<Document> decode_impl(std::string_view, const DecodeLimits&, DecodeError*, std::size_t*);
  // 24 bytes: the decoder writes one per value, so its size is most of the decoder's memory traffic.
  struct Token {
    union {
      std::int64_t integer;  // integers: the value
      std::uint32_t body;    // strings: offset of the content; lists/dicts: element count
    };
    std::uint32_t start;  // offset of the value's first byte in input_
    std::uint32_t end;    // one past its last byte
    std::uint32_t next;   // index of the token after this value's whole subtree
    Type type;
  };
  std::string_view input_;
  std::vector<Token> tokens_;
};

// Decodes exactly one value spanning the whole input (trailing bytes are an error).
// On failure the Error message is DecodeError::to_string(); pass `detail` to get the offset separately.
Result<Document> decode(std::string_view input, const DecodeLimits& limits = {}, DecodeError* detail = nullptr);

// Decodes one value at the start of input and reports how many bytes it used (for messages with a bencoded prefix,
// such as ut_metadata data messages). Trailing bytes are allowed.
Result<Document> decode_prefix(std::string_view input, std::size_t* consumed, const DecodeLimits& limits = {},
                               DecodeError* detail = nullptr);

// ---- Encoding -------------------------------------------------------------------------------------------------

// A streaming encoder that appends to a string. Dict keys must be written in sorted order by the caller; use Value
// when that is inconvenient.
class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}
  Encoder& integer(std::int64_t v);
  Encoder& string(std::string_view s);
  Encoder& raw(std::string_view already_encoded);
  Encoder& begin_list();
  Encoder& begin_dict();
  Encoder& end();
  Encoder& key(std::string_view k) { return string(k); }

 private:
  std::string& out_;
};

// A small owning value tree for building messages; dicts are kept sorted by std::map.
struct Value {
  using List = std::vector<Value>;
  using Dict = std::map<std::string, Value, std::less<>>;
  std::variant<std::int64_t, std::string, List, Dict> v;

  Value() : v(std::int64_t{0}) {}
  Value(std::int64_t i) : v(i) {}                   // NOLINT(google-explicit-constructor)
  Value(int i) : v(std::int64_t{i}) {}              // NOLINT(google-explicit-constructor)
  Value(std::string s) : v(std::move(s)) {}         // NOLINT(google-explicit-constructor)
  Value(std::string_view s) : v(std::string(s)) {}  // NOLINT(google-explicit-constructor)
  Value(const char* s) : v(std::string(s)) {}       // NOLINT(google-explicit-constructor)
  Value(List l) : v(std::move(l)) {}                // NOLINT(google-explicit-constructor)
  Value(Dict d) : v(std::move(d)) {}                // NOLINT(google-explicit-constructor)

  static Value from(Node n);  // deep copy of a decoded value
  void encode_to(std::string& out) const;
  std::string encode() const;
};

// Pretty-printer used by `bt-inspect --bencode`: strings as text when printable, hex otherwise.
std::string to_debug_string(Node n, std::size_t max_string_bytes = 200);

}  // namespace ph::bencode
