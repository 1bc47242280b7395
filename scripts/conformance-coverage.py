#!/usr/bin/env python3
"""Counts how many server-binding normative statements of MQTT 5.0 and 3.1.1 are named by a test.

The statements are the rows of the two matrices in docs/conformance.md (one row per statement:
`| MQTT-x.y.z-n | what Midge does | proof |`). A statement is "named by a test" when a Swift file
under Tests/ cites its id in the project's form:

    // [MQTT-3.3.1-4]          an MQTT 5.0 statement
    // [3.1.1:MQTT-3.3.1-4]    an MQTT 3.1.1 statement (same numbering scheme, other document)

The script also checks that the matrix and the tests agree: a row whose proof names a test must be
cited by some test, and every test the proof column names must exist. It exits 1 when they disagree.

Usage: scripts/conformance-coverage.py [--list-untested] [--repo DIR]
"""
import os
import re
import sys

CITATION = re.compile(r"\[(3\.1\.1:)?(MQTT-\d+(?:\.\d+)*-\d+)\]")
ROW = re.compile(r"^\|\s*(MQTT-\d+(?:\.\d+)*-\d+)\s*\|(.*)\|(.*)\|\s*$")
TEST_NAME = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)\.(test[A-Za-z0-9_]*)`")
MATRICES = {"5.0": "## MQTT 5.0 conformance matrix", "3.1.1": "## MQTT 3.1.1 conformance matrix"}


def read_matrices(path):
    """{version: [(id, proof)]} from the two matrix sections of docs/conformance.md."""
    rows = {version: [] for version in MATRICES}
    current = None
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.startswith("#"):
                current = next((v for v, title in MATRICES.items() if line.strip() == title), None)
                continue
            match = ROW.match(line.strip()) if current else None
            if match:
                rows[current].append((match.group(1), match.group(3).strip()))
    return rows


def read_tests(root):
    """Cited ids per version, and the set of (class, test) pairs defined under Tests/."""
    cited = {"5.0": set(), "3.1.1": set()}
    defined = set()
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".swift"):
                continue
            with open(os.path.join(directory, name), encoding="utf-8") as file:
                text = file.read()
            for prefix, statement in CITATION.findall(text):
                cited["3.1.1" if prefix else "5.0"].add(statement)
            current_class = None
            for line in text.splitlines():
                declared = re.search(r"\b(?:final\s+)?class\s+([A-Za-z_][A-Za-z0-9_]*)\s*:", line)
                if declared:
                    current_class = declared.group(1)
                test = re.search(r"\bfunc\s+(test[A-Za-z0-9_]*)\s*\(", line)
                if test and current_class:
                    defined.add((current_class, test.group(1)))
    return cited, defined


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if "--repo" in argv:
        repo = argv[argv.index("--repo") + 1]
    matrices = read_matrices(os.path.join(repo, "docs", "conformance.md"))
    cited, defined = read_tests(os.path.join(repo, "Tests"))
    problems = []
    for version, rows in matrices.items():
        ids = [statement for statement, _ in rows]
        named = [statement for statement in ids if statement in cited[version]]
        duplicates = sorted({statement for statement in ids if ids.count(statement) > 1})
        print(f"MQTT {version}: {len(named)} of {len(ids)} server-binding statements are named by a test "
              f"({len(ids) - len(named)} listed with a reason)")
        for statement in duplicates:
            problems.append(f"MQTT {version}: {statement} appears twice in the matrix")
        for statement, proof in rows:
            tests = TEST_NAME.findall(proof)
            if tests and statement not in cited[version]:
                problems.append(f"MQTT {version}: {statement} names {tests[0][0]}.{tests[0][1]} but no test cites "
                                f"{'[3.1.1:' if version == '3.1.1' else '['}{statement}]")
            for test in tests:
                if test not in defined:
                    problems.append(f"MQTT {version}: {statement} names {test[0]}.{test[1]}, which does not exist")
            if not tests and statement in cited[version] and proof.startswith("not tested"):
                problems.append(f"MQTT {version}: {statement} is cited by a test but the matrix says not tested")
        unknown = sorted(cited[version] - set(ids))
        if unknown:
            print(f"  cited by tests but not in the {version} matrix (client-side or another version's id?): "
                  + ", ".join(unknown))
        if "--list-untested" in argv:
            for statement, proof in rows:
                if statement not in cited[version]:
                    print(f"  {statement}: {proof}")
    for problem in problems:
        print("error: " + problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
