"""Operation schemas (docs/protocol.md, "Operation schemas"): parse the
text a worker declares and check a step's params against it, with the
same rules and messages as zsagad (messages/msg_schema.c), so a client
finds a bad saga before sending it."""
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

NAME_RE = re.compile(r"^[a-z0-9_]{1,32}$")
REF_RE = re.compile(r"^\$\{([A-Za-z0-9._:-]{1,64})\.([a-z0-9_]{1,32})\}$")
MAX_PARAMS = 32
MAX_STRING = 1024


@dataclass
class Key:
    name: str
    type: str  # int, str, bool
    optional: bool = False
    min: Optional[int] = None
    max: Optional[int] = None


def parse(text: str) -> Dict[str, Key]:
    """The keys of a schema text; ValueError naming the bad entry."""
    if len(text.encode()) > 512:
        raise ValueError("schema longer than 512 bytes")
    keys: Dict[str, Key] = {}
    for tok in text.split():
        name, sep, t = tok.partition(":")
        if not sep or not NAME_RE.match(name):
            raise ValueError(f"schema entry '{tok}': want key:type")
        typ = next((x for x in ("int", "str", "bool") if t.startswith(x)), None)
        if typ is None:
            raise ValueError(f"schema entry '{tok}': type must be int, str or bool")
        rest = t[len(typ):]
        k = Key(name, typ)
        if typ == "int" and rest and rest != "?":
            m = re.match(r"^(>=|>)(-?\d+)|^(-?\d+)\.\.(-?\d+)", rest)
            if not m:
                raise ValueError(f"schema entry '{tok}': bound must be >N, >=N or MIN..MAX")
            if m.group(1):
                k.min = int(m.group(2)) + (1 if m.group(1) == ">" else 0)
            else:
                k.min, k.max = int(m.group(3)), int(m.group(4))
            rest = rest[m.end():]
        if rest == "?":
            k.optional, rest = True, ""
        if rest:
            raise ValueError(f"schema entry '{tok}': unexpected '{rest}'")
        if name in keys:
            raise ValueError(f"schema names '{name}' twice")
        keys[name] = k
    if len(keys) > MAX_PARAMS:
        raise ValueError(f"schema with more than {MAX_PARAMS} keys")
    return keys


def check_value_form(where: str, params: Any) -> None:
    """The protocol's rules for a flat params or output map."""
    if not isinstance(params, dict):
        raise ValueError(f"{where} must be a map")
    if len(params) > MAX_PARAMS:
        raise ValueError(f"{where} has more than {MAX_PARAMS} entries")
    for k, v in params.items():
        if not isinstance(k, str) or not NAME_RE.match(k):
            raise ValueError(f"{where}: key {k!r} must be 1-32 of a-z 0-9 _")
        if isinstance(v, float):
            raise ValueError(f"{where}.{k}: floating point is refused (money is integer minor units)")
        if isinstance(v, str):
            if len(v.encode()) > MAX_STRING:
                raise ValueError(f"{where}.{k}: string over {MAX_STRING} bytes")
            if "\0" in v:
                raise ValueError(f"{where}.{k}: string holds a NUL byte")
        elif isinstance(v, int) and not isinstance(v, bool):
            if not -(2**63) <= v < 2**64:
                raise ValueError(f"{where}.{k}: integer out of int64")
        elif v is not None and not isinstance(v, bool):
            raise ValueError(f"{where}.{k}: values are nil, booleans, integers or strings")


def _type_of(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "str"
    return type(v).__name__


def _value(k: Key, v: Any) -> Optional[str]:
    if isinstance(v, str) and REF_RE.match(v):
        return None  # known only at run time
    if v is None and k.optional:
        return None
    got = _type_of(v)
    if got != k.type:
        return f"params.{k.name} must be {k.type}, not {got}"
    if got == "int" and ((k.min is not None and v < k.min) or (k.max is not None and v > k.max)):
        if k.max is not None:
            return f"params.{k.name} is {v}: it must be from {k.min} to {k.max}"
        return f"params.{k.name} is {v}: it must be at least {k.min}"
    return None


def check(act: Optional[Dict[str, Key]], act_name: str, comp: Optional[Dict[str, Key]],
          comp_name: str, params: Dict[str, Any]) -> Optional[str]:
    """None, or what is wrong with params for this action and compensation."""
    if act is None:
        return None  # nothing declared: the worker checks at run time
    for key, v in params.items():
        a, c = act.get(key), comp.get(key) if comp is not None else None
        if a is None and c is None:
            listed = ", ".join(n + ("?" if k.optional else "") for n, k in act.items()) or "nothing"
            extra = f"; and its compensation {comp_name}" if comp is not None else ""
            return f"unknown key params.{key} ({act_name} takes: {listed}{extra})"
        for k in (a, c):
            if k is not None:
                err = _value(k, v)
                if err:
                    return err
    for which, schema, name in (("operation", act, act_name), ("its compensation", comp, comp_name)):
        for k in (schema or {}).values():
            if not k.optional and k.name not in params:
                return f"missing params.{k.name} ({which} {name} needs it)"
    return None


def check_saga(saga: Dict[str, Any], schemas: Dict[str, Dict[str, Optional[str]]]) -> Optional[str]:
    """Check every step of a saga definition against schemas, a map
    "system.operation" -> {"params": text or None}. None, or the first
    problem, naming the step."""
    parsed: Dict[str, Optional[Dict[str, Key]]] = {}

    def get(system: str, op: Optional[str]) -> Optional[Dict[str, Key]]:
        if not op:
            return None
        name = f"{system}.{op}"
        if name not in parsed:
            text = (schemas.get(name) or {}).get("params")
            parsed[name] = parse(text) if text is not None else None
        return parsed[name]

    for i, st in enumerate(saga.get("steps") or []):
        if not isinstance(st, dict):
            continue
        params = st.get("params") or {}
        try:
            check_value_form(f"steps[{i}].params", params)
        except ValueError as e:
            return str(e)
        system, act, comp = st.get("system", ""), st.get("action"), st.get("compensation")
        err = check(get(system, act), act or "", get(system, comp), comp or "", params)
        if err:
            return f"steps[{i}] '{st.get('id', '')}': {err}"
    return None
