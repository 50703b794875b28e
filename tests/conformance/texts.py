#!/usr/bin/python3
"""The Python and Node.js libraries hold copies of the C runtime's barrier:
its SQL (workers/wrk_step.c) and its Redis Lua text (workers/wrk_step.h).
This checks each copy is byte-for-byte the C text, so a worker in any
language and a C worker can share one database."""
import ast
import importlib.util
import json
import os
import re
import subprocess
import sys

from c_lua import macro

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(TOP, "clients", "python"))
from zsaga import barrier  # noqa: E402


def c_array(source, name):
    """dialect -> text of `static const char *NAME[] = { [DB_DIALECT_X] = "..." ... };`"""
    body = re.search(r"static const char \*" + name + r"\[\] = \{(.*?)\n\};", source, re.S).group(1)
    out = {}
    for m in re.finditer(r"\[DB_DIALECT_(\w+)\] =((?:\s*\"(?:[^\"\\]|\\.)*\")+)", body):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        out[{"SQLITE": "sqlite", "POSTGRES": "postgresql", "MYSQL": "mysql", "REDIS": "redis"}[m.group(1)]] = \
            "".join(bytes(p, "utf-8").decode("unicode_escape") for p in parts)
    return out


def c_string_after(source, anchor):
    m = re.search(re.escape(anchor) + r"\s*((?:\"(?:[^\"\\]|\\.)*\"\s*)+)", source)
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))


def c_fraud_effects(source):
    """s_lua_* of workers/fraud/fraud.c: each effect, LUA_RULE spelled out."""
    rule = "".join(ast.literal_eval('"' + p + '"') for p in re.findall(
        r'"((?:[^"\\]|\\.)*)"', re.search(r"#define LUA_RULE\s*\\\n(.*?)\n\n", source, re.S).group(1)))
    out = {}
    for m in re.finditer(r"static const char (s_lua_\w+)\[\] =\s*WRK_LUA_STEP\((.*?)\);", source, re.S):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        out[m.group(1)] = (rule if "LUA_RULE" in m.group(2) else "") + \
            "".join(ast.literal_eval('"' + p + '"') for p in parts)
    return out


def main():
    c = open(os.path.join(TOP, "workers", "wrk_step.c"), encoding="utf-8").read()
    h = os.path.join(TOP, "workers", "wrk_step.h")
    want = {
        "insert": c_array(c, "s_insert_sql"),
        "ddl": c_array(c, "s_ddl"),
        "select": c_string_after(c, "return wrk_db_exec(ctx->db,"),
        "mark": c_string_after(c, "db_rc_t rc = wrk_db_exec_commit(\n        ctx->db,"),
        "prelude": macro(h, "WRK_LUA_PRELUDE"),
        "epilogue": macro(h, "WRK_LUA_EPILOGUE"),
    }
    assert len(want["insert"]) == 3 and len(want["ddl"]) == 4, want
    assert want["select"].startswith("SELECT state") and want["mark"].startswith("UPDATE zsaga_barrier"), want
    py = {"insert": barrier.INSERT_SQL, "ddl": barrier.DDL, "select": barrier.SELECT_SQL,
          "mark": barrier.MARK_SQL, "prelude": barrier.LUA_PRELUDE, "epilogue": barrier.LUA_EPILOGUE}
    node = json.loads(subprocess.check_output(
        ["node", "-e", "const b = require(process.argv[1]); console.log(JSON.stringify({insert: b.INSERT_SQL, "
         "ddl: b.DDL, select: b.SELECT_SQL, mark: b.MARK_SQL, prelude: b.LUA_PRELUDE, epilogue: b.LUA_EPILOGUE}))",
         os.path.join(TOP, "clients", "node", "lib", "barrier.js")]))
    bad = 0
    for k, v in want.items():
        for lang, got in (("python", py[k]), ("node", node[k])):
            if isinstance(v, dict):
                # Node.js has no SQLite driver: its copy leaves that dialect out.
                v_ = {d: t for d, t in v.items() if d in got} if lang == "node" else v
                ok = got == v_ and (lang == "node" or set(got) == set(v))
            else:
                ok = got == v
            if not ok:
                print(f"FAIL: {lang}'s copy of the barrier's {k} differs from the C runtime's")
                bad += 1
    # The fraud system in Python (the chaos harness runs it beside the C
    # worker on one Redis): its effects are the C worker's Lua.
    fraud_c = c_fraud_effects(open(os.path.join(TOP, "workers", "fraud", "fraud.c"), encoding="utf-8").read())
    spec = importlib.util.spec_from_file_location("fraud_worker", os.path.join(TOP, "workers", "fraud", "fraud_worker.py"))
    fraud_py = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fraud_py)
    for c_name, py_name in (("s_lua_fraud_check", "LUA_FRAUD_CHECK"), ("s_lua_clear_fraud_check", "LUA_CLEAR_FRAUD_CHECK"),
                            ("s_lua_risk_assessment", "LUA_RISK_ASSESSMENT"), ("s_lua_clear_risk_flag", "LUA_CLEAR_RISK_FLAG")):
        if getattr(fraud_py, py_name) != fraud_c.get(c_name):
            print(f"FAIL: fraud_worker.py's {py_name} differs from fraud.c's {c_name}")
            bad += 1
    if bad:
        return 1
    print(f"PASS: the Python and Node.js barriers are the C runtime's text ({len(want)} pieces), "
          f"and the Python fraud worker's effects are fraud.c's ({len(fraud_c)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
