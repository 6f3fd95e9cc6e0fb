#!/usr/bin/env python3
"""Regenerates the malformed-input corpus and EXPECTED.tsv (file -> a phrase its error must contain).

Each file must make `bt-inspect FILE` print one clear error and exit 1. Run from anywhere; writes beside itself.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def enc(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(enc(x) for x in v) + b"e"
    if isinstance(v, dict):
        items = sorted(((k.encode() if isinstance(k, str) else k), x) for k, x in v.items())
        return b"d" + b"".join(enc(k) + enc(x) for k, x in items) + b"e"
    raise TypeError(v)


def single(**over):
    info = {"name": "a.bin", "length": 40000, "piece length": 16384, "pieces": b"h" * 60}
    info.update(over)
    return info


def multi(files, pieces=1, **over):
    info = {"name": "dir", "piece length": 16384, "files": files, "pieces": b"h" * (20 * pieces)}
    info.update(over)
    return info


def tor(info, **root):
    root["info"] = info
    return enc(root)


def f(length, path):
    return {"length": length, "path": path}


GOOD = tor(single(), announce="http://127.0.0.1:1/announce")
HEX = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"

CASES = [
    # bencode structure
    ("empty.torrent", b"", "expected a value"),
    ("truncated_header.torrent", b"d8:announ", "runs past the end"),
    ("truncated_half.torrent", GOOD[: len(GOOD) // 2], "bencode"),
    ("truncated_last_byte.torrent", GOOD[:-1], "unterminated dict"),
    ("trailing_garbage.torrent", GOOD + b"garbage", "trailing data"),
    ("unterminated_list.torrent", b"d4:infold", "unterminated"),
    ("bad_type_byte.torrent", b"d4:infoxe", "expected 'i', 'l', 'd' or a string length"),
    ("binary_junk.torrent", bytes(range(255, 0, -1)), "expected 'i', 'l', 'd' or a string length"),
    ("integer_dict_key.torrent", b"di1ei2ee", "string dict key"),
    ("huge_integer.torrent", tor(single()).replace(b"i40000e", b"i99999999999999999999999e"), "does not fit in 64 bits"),
    ("huge_negative_integer.torrent", b"d6:lengthi-99999999999999999999ee", "does not fit in 64 bits"),
    ("leading_zero_integer.torrent", tor(single()).replace(b"i40000e", b"i040000e"), "leading zero"),
    ("minus_zero.torrent", b"d1:ai-0ee", "'-0'"),
    ("huge_string_length.torrent", b"d4:info99999999999999:abce", "longer than the input"),
    ("string_past_end.torrent", b"d4:info10:abce", "runs past the end"),
    ("deep_list_nesting_100k.torrent", b"l" * 100000 + b"e" * 100000, "nesting deeper"),
    ("deep_dict_nesting_100k.torrent", b"d1:a" * 100000 + b"i0e" + b"e" * 100000, "nesting deeper"),
    # wrong types
    ("top_level_list.torrent", b"li1ee", "top level must be a dict"),
    ("missing_info.torrent", enc({"announce": "http://x/"}), "'info' dict is missing"),
    ("info_is_integer.torrent", enc({"info": 5}), "'info' must be a dict"),
    ("name_is_integer.torrent", tor(single(name=7)), "'name' must be a string"),
    ("length_is_string.torrent", tor(single(length="40000")), "'length' must be an integer"),
    ("piece_length_is_string.torrent", tor(single(**{"piece length": "16384"})), "'piece length' must be an integer"),
    ("pieces_is_list.torrent", tor(single(pieces=[b"x" * 20])), "'pieces' must be a string"),
    ("files_is_dict.torrent", tor({"name": "d", "piece length": 16384, "pieces": b"h" * 20, "files": {"a": 1}}),
     "'files' must be a list"),
    ("file_entry_is_string.torrent", tor(multi(["a"])), "files[0] must be a dict"),
    ("path_is_string.torrent", tor(multi([{"length": 5, "path": "a/b"}])), "must be a list of strings"),
    ("path_component_is_int.torrent", tor(multi([f(5, ["a", 3])])), "is not a string"),
    ("announce_is_integer.torrent", tor(single(), announce=5), "'announce' must be a string"),
    ("url_list_is_integer.torrent", tor(single(), **{"url-list": 5}), "'url-list' must be a string"),
    ("private_is_string.torrent", tor(single(private="yes")), "'private' must be an integer"),
    # geometry
    ("negative_length.torrent", tor(single(length=-1)), "negative"),
    ("negative_file_length.torrent", tor(multi([f(-5, ["a"])])), "negative"),
    ("total_length_overflow.torrent", tor(multi([f(2**63 - 1, ["a"]), f(2**63 - 1, ["b"]), f(2**63 - 1, ["c"])])),
     "overflows"),
    ("zero_total_length.torrent", tor(single(length=0, pieces=b"")), "no data"),
    ("both_length_and_files.torrent", tor(single(files=[f(5, ["a"])])), "both 'length' and 'files'"),
    ("neither_length_nor_files.torrent", tor({"name": "a", "piece length": 16384, "pieces": b"h" * 20}), "neither"),
    ("files_empty.torrent", tor(multi([])), "'files' is empty"),
    ("duplicate_paths.torrent", tor(multi([f(5, ["a"]), f(5, ["a"])])), "duplicate path"),
    ("pieces_not_multiple_of_20.torrent", tor(single(pieces=b"h" * 59)), "not a multiple of 20"),
    ("pieces_too_few.torrent", tor(single(pieces=b"h" * 40)), "need 3"),
    ("pieces_too_many.torrent", tor(single(pieces=b"h" * 80)), "need 3"),
    ("pieces_empty.torrent", tor(single(pieces=b"")), "need 3"),
    ("piece_length_not_power_of_two.torrent", tor(single(**{"piece length": 20000})), "power of two"),
    ("piece_length_zero.torrent", tor(single(**{"piece length": 0})), "power of two"),
    ("piece_length_negative.torrent", tor(single(**{"piece length": -16384})), "power of two"),
    ("piece_length_8k.torrent", tor(single(**{"piece length": 8192})), "power of two"),
    ("piece_length_huge.torrent", tor(single(**{"piece length": 2**40})), "exceeds the limit"),
    # paths
    ("path_dotdot.torrent", tor(multi([f(5, ["..", "..", "etc", "passwd"])])), "would leave the torrent's folder"),
    ("path_dotdot_middle.torrent", tor(multi([f(5, ["a", "..", "..", "b"])])), "would leave the torrent's folder"),
    ("path_dot.torrent", tor(multi([f(5, [".", "a"])])), "would leave the torrent's folder"),
    ("path_absolute.torrent", tor(multi([f(5, ["/etc/passwd"])])), "absolute path"),
    ("path_backslash_absolute.torrent", tor(multi([f(5, ["\\windows\\system32"])])), "absolute path"),
    ("path_drive_letter.torrent", tor(multi([f(5, ["C:", "evil"])])), "drive letter"),
    ("path_empty_component.torrent", tor(multi([f(5, ["a", "", "b"])])), "empty path component"),
    ("path_empty_list.torrent", tor(multi([f(5, [])])), "path is empty"),
    ("path_nul.torrent", tor(multi([f(5, [b"evil\x00.txt"])])), "NUL"),
    ("path_utf8_dotdot.torrent", tor(multi([{"length": 5, "path": ["ok"], "path.utf-8": [".."]}])),
     "would leave the torrent's folder"),
    ("name_dotdot.torrent", tor(single(name="..")), "'name'"),
    ("name_empty.torrent", tor(single(name="")), "empty path component"),
    ("name_absolute.torrent", tor(single(name="/tmp/x")), "absolute path"),
    # BEP 52
    ("v2_only.torrent", tor({"name": "a", "piece length": 16384, "meta version": 2, "file tree": {}}), "BEP 52"),
    ("hybrid.torrent", tor(single(**{"meta version": 2, "file tree": {}})), "BEP 52"),
    ("meta_version_3.torrent", tor(single(**{"meta version": 3})), "unknown 'meta version'"),
    # magnet links (text files holding one link)
    ("magnet_no_xt.magnet", b"magnet:?dn=movie&tr=http://t/announce\n", "missing xt=urn:btih:"),
    ("magnet_short_hash.magnet", b"magnet:?xt=urn:btih:abcdef\n", "40 hex or 32 base32"),
    ("magnet_bad_hex.magnet", b"magnet:?xt=urn:btih:" + b"g" * 40 + b"\n", "not all hex"),
    ("magnet_bad_base32.magnet", b"magnet:?xt=urn:btih:" + b"1" * 32 + b"\n", "base32"),
    ("magnet_btmh_only.magnet", b"magnet:?xt=urn:btmh:1220" + b"a" * 64 + b"\n", "BEP 52"),
    ("magnet_bad_percent.magnet", ("magnet:?xt=urn:btih:%s&dn=%%zz\n" % HEX).encode(), "bad percent escape"),
    ("magnet_truncated_percent.magnet", ("magnet:?xt=urn:btih:%s&tr=http%%3\n" % HEX).encode(), "truncated percent"),
    ("magnet_bad_so.magnet", ("magnet:?xt=urn:btih:%s&so=5-2\n" % HEX).encode(), "ends before it starts"),
    ("magnet_so_not_number.magnet", ("magnet:?xt=urn:btih:%s&so=x\n" % HEX).encode(), "not a file index"),
    ("magnet_other_urn.magnet", b"magnet:?xt=urn:ed2k:31D6CFE0D16AE931B73C59D7E0C089C0\n", "not a BitTorrent info-hash"),
    ("magnet_two_hashes.magnet", ("magnet:?xt=urn:btih:%s&xt=urn:btih:%s\n" % (HEX, "0" * 40)).encode(),
     "two different"),
    ("magnet_empty.magnet", b"magnet:\n", "missing xt=urn:btih:"),
]


def main():
    keep = {name for name, _, _ in CASES} | {"make_corpus.py", "EXPECTED.tsv"}
    for old in os.listdir(HERE):
        if old not in keep:
            os.remove(os.path.join(HERE, old))
    with open(os.path.join(HERE, "EXPECTED.tsv"), "w") as manifest:
        for name, data, phrase in CASES:
            with open(os.path.join(HERE, name), "wb") as out:
                out.write(data)
            manifest.write("%s\t%s\n" % (name, phrase))
    print("%d malformed inputs written" % len(CASES))


if __name__ == "__main__":
    main()
