"""The Redis barrier's Lua text as the C runtime defines it
(WRK_LUA_PRELUDE and WRK_LUA_EPILOGUE in workers/wrk_step.h), read from
the header, so the Python and Node copies can be checked against it."""
import ast
import re
import sys


def macro(header: str, name: str) -> str:
    text = open(header, encoding="utf-8").read()
    m = re.search(r"#define " + name + r"\s*\\\n(.*?)(?:\n\n|\n#|\n/\*)", text, re.S)
    if not m:
        raise SystemExit(f"{name} not found in {header}")
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    return "".join(ast.literal_eval('"' + p + '"') for p in parts)


if __name__ == "__main__":
    h = sys.argv[1]
    sys.stdout.write(macro(h, sys.argv[2]))
