"""Parse Prometheus text with the reference client's parser and check
figures: promcheck.py FILE [NAME{label=value,...}=OP:NUMBER ...].
OP is eq, ge or gt; a sample named with its labels (any others ignored)
must exist and compare. Every sample is parsed, so malformed text fails."""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
samples = []
for fam in text_string_to_metric_families(text):
    if fam.type not in ("counter", "gauge", "histogram", "untyped"):
        sys.exit("unexpected type %s of %s" % (fam.type, fam.name))
    for s in fam.samples:
        samples.append(s)
if not samples:
    sys.exit("no samples")
# A histogram's buckets must be cumulative and end in +Inf == _count.
buckets = {}
for s in samples:
    if s.name.endswith("_bucket"):
        key = (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")))
        buckets.setdefault(key, []).append((float(s.labels["le"]), s.value))
for key, bs in buckets.items():
    values = [v for _, v in sorted(bs)]
    if values != sorted(values):
        sys.exit("buckets not cumulative: %s" % (key,))
for spec in sys.argv[2:]:
    m = re.match(r"^([a-z_]+)(?:\{(.*)\})?=(eq|ge|gt):([0-9.]+)$", spec)
    if not m:
        sys.exit("bad spec " + spec)
    name, labels, op, num = m.group(1), m.group(2), m.group(3), float(m.group(4))
    want = dict(kv.split("=", 1) for kv in labels.split(",")) if labels else {}
    found = [s for s in samples if s.name == name
             and all(s.labels.get(k) == v for k, v in want.items())]
    if not found:
        sys.exit("no sample %s%s" % (name, want))
    v = sum(s.value for s in found)
    ok = v == num if op == "eq" else v >= num if op == "ge" else v > num
    if not ok:
        sys.exit("%s: %s, wanted %s %s" % (spec, v, op, num))
print("%d samples, %d histograms" % (len(samples), len(buckets)))
