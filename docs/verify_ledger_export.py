#!/usr/bin/env python3
"""Re-check an airlock ledger export without airlock: an auditor's second opinion.

Implements the chain rules of docs/ledger.md with the Python standard library only:
every seq follows the last, every prev_hash is the previous hash (the genesis value
for entry 1), every hash is SHA-256 of the length-prefixed encoding, and the end
line matches. Checkpoint signatures are checked with the stock minisign tool:
--checkpoint-out FILE writes the latest checkpoint to FILE and FILE.minisig, then
    minisign -Vm FILE -p host.pub
and compare the `size` and `head` lines of FILE with this script's output.

Usage: verify_ledger_export.py EXPORT.jsonl [--checkpoint-out FILE]
Exit 0 when the chain holds, 3 when it does not (the message names the entry).
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


def main(argv):
    path = argv[1]
    cp_out = argv[3] if len(argv) > 3 and argv[2] == "--checkpoint-out" else None
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
        prev = h
    fail("the export has no end line: it is truncated")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
