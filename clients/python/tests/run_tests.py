"""Runs the client's tests and prints one line per test and the closing line
"N passed, N failed, N skipped" (the repository's test convention).

A skip is reported with its kind, the start of its reason:
  "optional extra:" - an extra the client supports but Debian does not ship (shap): skipped
                      everywhere, CI included;
  "not served:"     - an endpoint of the contract this server does not answer yet: skipped;
  anything else     - something `make py-deps` installs is missing: skipped, but a failure
                      under CI=true (a broken install step must not pass as a skip).
Usage: EXPLAIND_URL=http://127.0.0.1:PORT python3 clients/python/tests/run_tests.py
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the explaind package, without installing it

TOLERATED = ("optional extra:", "not served:")


def under_ci():
    ci = os.environ.get("CI", "")
    return ci not in ("", "0", "false")


def main():
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py", top_level_dir=os.path.dirname(HERE))
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0)
    res = runner.run(suite)
    sys.stderr.flush()
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    skipped = 0
    for test, reason in res.skipped:
        kind = next((k for k in TOLERATED if reason.startswith(k)), None)
        if kind is None and under_ci():
            failed += 1
            print("FAIL %s: skipped under CI: %s" % (test.id(), reason))
        else:
            skipped += 1
            print("skip %s [%s] %s" % (test.id(), (kind or "missing:")[:-1], reason))
    for test, _ in res.failures + res.errors:
        print("FAIL %s" % test.id())
    passed = res.testsRun - len(res.failures) - len(res.errors) - len(res.skipped) - len(res.unexpectedSuccesses)
    sys.stderr.flush()
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
