#!/usr/bin/env python3
"""Re-check an airlock ledger export without airlock: an auditor's second opinion.

Implements the chain rules of docs/ledger.md with the Python standard library only:
every seq follows the last, every prev_hash is the previous hash (the genesis value
for entry 1), every hash is SHA-256 of the length-prefixed encoding, and the end
line matches. Checkpoint signatures are checked with the stock minisign tool:
--checkpoint-out FILE writes the latest checkpoint to FILE and FILE.minisig, then
    minisign -Vm FILE -p host.pub
and compare the `size` and `head` lines of FILE with the "latest checkpoint" line
this script prints (the chain up to that size is the one the host key signed).

Usage: verify_ledger_export.py EXPORT.jsonl [--checkpoint-out FILE]
Exit 0 when the chain holds, 3 when it does not (the message names the entry),
2 for a usage error.
"""
import hashlib
import json
import struct
import sys


def frame(b):
    return struct.pack(">Q", len(b)) + b


def entry_hash(e, prev):
    h = hashlib.sha256()
    h.update(frame(b"airlock-ledger/v1/entry"))
    h.update(struct.pack(">Q", e["seq"]))
    for k in ("ts", "host", "actor", "kind"):
        h.update(frame(e[k].encode()))
    for k in ("bundle", "mitigation"):
        h.update(b"\0" if e[k] is None else b"\1" + frame(e[k].encode()))
    h.update(frame(e["detail"].encode()))
    h.update(prev)
    return h.digest()


def fail(msg):
    print("broken: " + msg)
    sys.exit(3)


def usage(message):
    print("verify_ledger_export.py: %s" % message, file=sys.stderr)
    print("usage: verify_ledger_export.py EXPORT.jsonl [--checkpoint-out FILE]", file=sys.stderr)
    return 2


def main(argv):
    args = argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--checkpoint-out"):
        return usage("expected an export file, optionally followed by --checkpoint-out FILE")
    path = args[0]
    cp_out = args[2] if len(args) == 3 else None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines[-1] != "":
        fail("the file does not end with a newline: it is truncated")
    header = json.loads(lines[0])
    g = hashlib.sha256(frame(b"airlock-ledger/v1/genesis") + frame(header["ledger"].encode()))
    prev, seq, checkpoint = g.digest(), 0, None
    for line in lines[1:-1]:
        e = json.loads(line)
        if "end" in e:
            end = e["end"]
            if end["size"] != seq or end["head"] != prev.hex():
                fail("the end line does not match the entries")
            print("ok: ledger %s, %d entries, head %s" % (header["ledger"], seq, prev.hex()))
            if checkpoint:
                print("latest checkpoint: size %d, head %s" % checkpoint["covers"])
            if cp_out and checkpoint:
                with open(cp_out, "w", encoding="utf-8") as f:
                    f.write(checkpoint["body"])
                with open(cp_out + ".minisig", "w", encoding="utf-8") as f:
                    f.write(checkpoint["signature"])
            return 0
        seq += 1
        if e["seq"] != seq:
            fail("entry %d: found seq %d" % (seq, e["seq"]))
        if e["prev_hash"] != prev.hex():
            fail("entry %d: prev_hash is not the previous entry's hash" % seq)
        h = entry_hash(e, prev)
        if e["hash"] != h.hex():
            fail("entry %d: the hash does not match the entry" % seq)
        if e["kind"] == "checkpoint":
            checkpoint = json.loads(e["detail"])
            if ("size %d\nhead %s\n" % (seq - 1, prev.hex())) not in checkpoint["body"]:
                fail("entry %d: the checkpoint does not sign the entry before it" % seq)
            checkpoint["covers"] = (seq - 1, prev.hex())
        prev = h
    fail("the export has no end line: it is truncated")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
