#!/usr/bin/python3
# snmpd "pass_persist" handler serving HOST-RESOURCES-MIB's hrStorageTable
# from a JSON file the test rewrites, read again at every request:
# [{"descr", "units", "size", "used"}, ...]. Usage (by snmpd): hrstorage.py
# FILE, then the pass_persist protocol on stdin/stdout (PING, get, getnext).
import json
import sys

BASE = (1, 3, 6, 1, 2, 1, 25, 2, 3, 1)
FIXED_DISK = ".1.3.6.1.2.1.25.2.1.4"


def parse(oid):
    return tuple(int(x) for x in oid.strip(".").split(".") if x)


def rows(path):
    with open(path) as f:
        vols = json.load(f)
    out = {}
    for i, v in enumerate(vols, 1):
        out[BASE + (1, i)] = ("integer", str(i))
        out[BASE + (2, i)] = ("objectid", FIXED_DISK)
        out[BASE + (3, i)] = ("string", v["descr"])
        out[BASE + (4, i)] = ("integer", str(v["units"]))
        out[BASE + (5, i)] = ("integer", str(v["size"]))
        out[BASE + (6, i)] = ("integer", str(v["used"]))
    return out


def answer(path, mode, oid):
    table = rows(path)
    if mode == "get":
        key = oid if oid in table else None
    else:
        key = next((k for k in sorted(table) if k > oid), None)
    if key is None:
        return "NONE\n"
    typ, val = table[key]
    return "." + ".".join(str(x) for x in key) + "\n" + typ + "\n" + val + "\n"


def main():
    path = sys.argv[1]
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        cmd = line.strip()
        if cmd == "PING":
            out = "PONG\n"
        elif cmd in ("get", "getnext"):
            out = answer(path, cmd, parse(sys.stdin.readline().strip()))
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out = "not-writable\n"
        else:
            out = "NONE\n"
        sys.stdout.write(out)
        sys.stdout.flush()


main()
