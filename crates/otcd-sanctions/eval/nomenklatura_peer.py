#!/usr/bin/env python3
"""Runs OpenSanctions' nomenklatura matchers (logic-v2, ofac) on otcd's labelled evaluation set, beside otcd's own
scores from the same export, and prints the side-by-side table (markdown) for BENCHMARKS.md.

    python3 -m venv /tmp/nk && /tmp/nk/bin/pip install nomenklatura   # PyICU builds from source: libicu-dev, g++
    cargo run -p otcd-sanctions --release --example evaluate -- --export /tmp/otcd-eval
    /tmp/nk/bin/python crates/otcd-sanctions/eval/nomenklatura_peer.py /tmp/otcd-eval

Not part of CI (a benchmark, not a test; the venv takes minutes to build).

The export holds the cases (`cases.json`: query name, variant, the entry it must find, otcd's scores) and every
listed entry (`entries.jsonl`). nomenklatura compares two entities and has no index of its own, so candidates come
from a token index over the same entries: every entry sharing a name token with the query (rarest tokens first,
at most CANDIDATES_MAX), plus the expected entry for positive cases (so the peer is never penalised for the
blocking). A case counts as found at a threshold when the expected entry's score reaches it; an unlisted name
raises an alert when any candidate's score reaches it. nomenklatura's thresholds: yente's default, 0.70, and
otcd's hit threshold, 0.92. The peers get the query's schema (Person, Company, or the expected entry's), which otcd
does not use.
"""

import json
import math
import re
import sys
import time
import unicodedata
from collections import defaultdict
from pathlib import Path

from followthemoney import EntityProxy, model
from nomenklatura.matching import get_algorithm
from nomenklatura.matching.types import ScoringConfig

CANDIDATES_MAX = 30
# yente's default threshold, and otcd's hit threshold for a like-for-like row.
PEER_THRESHOLDS = (0.70, 0.92)
SCHEMAS = {"individual": "Person", "entity": "Organization", "vessel": "Vessel", "aircraft": "Airplane"}
POSITIVES = ["Typo", "Transposition", "Reordered", "DroppedMiddle", "Transliteration", "Alias", "LegalFormTypo",
             "LeadingParts"]
NEGATIVES = ["CommonName", "CommonCompany"]


def tokens(text):
    folded = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(character for character in folded if not unicodedata.combining(character))
    return [token for token in re.split(r"[^\w]+", folded) if len(token) >= 2]


def entity(identifier, schema, names):
    return EntityProxy.from_dict({"id": identifier, "schema": schema, "properties": {"name": names}})


def load_entries(path):
    entries, postings = {}, defaultdict(set)
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            raw = json.loads(line)
            key = (raw["list"], raw["id"])
            names = [raw["name"]] + [alias["name"] for alias in raw["aliases"]]
            entries[key] = entity(f'{raw["list"]}-{raw["id"]}', SCHEMAS[raw["kind"]], names)
            for name in names:
                for token in tokens(name):
                    postings[token].add(key)
    return entries, postings


def candidates(name, postings, total):
    scored = defaultdict(float)
    for token in set(tokens(name)):
        holders = postings.get(token, ())
        if not holders:
            continue
        weight = math.log(total / len(holders))
        for key in holders:
            scored[key] += weight
    return [key for key, _ in sorted(scored.items(), key=lambda item: -item[1])[:CANDIDATES_MAX]]


def main(export):
    export = Path(export)
    summary = json.loads((export / "cases.json").read_text())
    review, hit = summary["thresholds"]["review"], summary["thresholds"]["hit"]
    entries, postings = load_entries(export / "entries.jsonl")
    matchers = {name: get_algorithm(name) for name in ("logic-v2", "ofac")}
    config = ScoringConfig.defaults()
    rows = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # variant -> column -> [found, count]
    timings = defaultdict(float)
    for number, case in enumerate(summary["cases"]):
        variant, expected = case["variant"], case["expected"]
        if expected:
            schema = SCHEMAS.get(case["expected_kind"] or "entity", "LegalEntity")
        else:
            schema = "Person" if variant == "CommonName" else "Company"
        # A fresh id per query: nomenklatura caches comparisons by entity id.
        query = entity(f"query-{number}", schema, [case["name"]])
        keys = candidates(case["name"], postings, len(entries))
        expected_key = (expected["list"], expected["id"]) if expected else None
        if expected_key and expected_key not in keys and expected_key in entries:
            keys.append(expected_key)
        otcd = case["otcd_expected_score"] if expected else case["otcd_top_score"]
        record(rows[variant], "otcd review", otcd >= review)
        record(rows[variant], "otcd hit", otcd >= hit)
        for name, matcher in matchers.items():
            started = time.perf_counter()
            scores = {key: matcher.compare(query, entries[key], config).score for key in keys}
            timings[name] += time.perf_counter() - started
            score = scores.get(expected_key, 0.0) if expected else max(scores.values(), default=0.0)
            for threshold in PEER_THRESHOLDS:
                record(rows[variant], f"{name} ≥ {threshold:.2f}", score >= threshold)
    print_table(rows, review, hit, timings, len(summary["cases"]))


def record(row, column, found):
    row[column][0] += int(found)
    row[column][1] += 1


def print_table(rows, review, hit, timings, cases):
    peers = [f"{name} ≥ {threshold:.2f}" for name in ("logic-v2", "ofac") for threshold in PEER_THRESHOLDS]
    columns = ["otcd review", "otcd hit"] + peers
    header = [f"otcd ≥ {review:.2f} (review)", f"otcd ≥ {hit:.2f} (hit)"] + peers
    print("| case | count | " + " | ".join(header) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for label, variants in [("recall", POSITIVES), ("alerts on unlisted", NEGATIVES)]:
        for variant in variants:
            row = rows.get(variant)
            if row:
                cells = [f"{row[column][0] / max(row[column][1], 1):.3f}" for column in columns]
                print(f"| {variant} ({label}) | {row[columns[0]][1]} | " + " | ".join(cells) + " |")
        total = [sum(rows[variant][column][0] for variant in variants if variant in rows) for column in columns]
        count = sum(rows[variant][columns[0]][1] for variant in variants if variant in rows)
        cells = [f"**{found / max(count, 1):.3f}**" for found in total]
        print(f"| **all: {label}** | {count} | " + " | ".join(cells) + " |")
    print()
    for name, seconds in timings.items():
        print(f"{name}: {seconds:.1f} s for {cases} cases ({1000 * seconds / max(cases, 1):.2f} ms per case, all candidates)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/otcd-eval")
