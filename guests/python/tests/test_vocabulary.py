"""The Python SDK against rill's shared vocabulary (protocol/conformance/*.json): every
valid ref parses to its fields, every invalid one is refused, and every WIT error kind
has its exception. Runs on the host's CPython (``python3 -m unittest discover -s
guests/python/tests``); the modules tested need no component bindings.
"""

import importlib.util
import json
import pathlib
import unittest

HERE = pathlib.Path(__file__).resolve().parent
SDK = HERE.parent / "rill_guest"
CONFORMANCE = HERE.parents[2] / "protocol" / "conformance"


def load(name):
    """A module of the SDK by file, without the package (whose other modules import
    bindings that exist only inside a component)."""
    spec = importlib.util.spec_from_file_location(f"rill_guest_{name}", SDK / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


refs = load("refs")
errors = load("errors")


class Refs(unittest.TestCase):
    table = json.loads((CONFORMANCE / "refs.json").read_text())

    def test_valid_refs_parse_to_their_fields(self):
        for case in self.table["valid"]:
            with self.subTest(case=case["json"]):
                self.assertTrue(refs.is_channel_ref(case["json"]))
                parsed = refs.parse_channel_ref(case["json"])
                self.assertEqual(
                    parsed,
                    {"channel_id": case["channel_id"], "access_key": case["access_key"], "direction": case["direction"]},
                )

    def test_invalid_refs_are_refused(self):
        for case in self.table["invalid"]:
            with self.subTest(why=case["why"]):
                self.assertFalse(refs.is_channel_ref(case["json"]))
                with self.assertRaises(ValueError):
                    refs.parse_channel_ref(case["json"])

    def test_refs_are_found_anywhere_in_a_payload(self):
        ref = {"channel_id": "c", "access_key": "k", "direction": "read"}
        payload = {"job": {"reader": ref, "note": "x"}, "list": [1, ref]}
        self.assertEqual(list(refs.extract_channel_refs(payload)), [("job.reader", ref), ("list[1]", ref)])


class ErrorKinds(unittest.TestCase):
    table = json.loads((CONFORMANCE / "errors.json").read_text())

    def test_every_channel_error_kind_has_its_exception(self):
        self.assertEqual(list(errors.CHANNEL_ERRORS), self.table["channel-error"])
        for kind, cls in errors.CHANNEL_ERRORS.items():
            self.assertEqual(cls.kind, kind)
            self.assertTrue(issubclass(cls, errors.ChannelError) and issubclass(cls, OSError))

    def test_every_call_error_kind_has_its_exception(self):
        self.assertEqual(list(errors.CALL_ERRORS), self.table["call-error"])
        for kind, cls in errors.CALL_ERRORS.items():
            self.assertEqual(cls.kind, kind)
            self.assertTrue(issubclass(cls, errors.CallError))

    def test_channel_errors_are_the_builtin_ones_where_python_has_them(self):
        self.assertIsInstance(errors.ChannelClosed(), BrokenPipeError)
        self.assertIsInstance(errors.ChannelAborted("why"), ConnectionAbortedError)
        self.assertIsInstance(errors.ChannelTimedOut(), TimeoutError)
        self.assertIsInstance(errors.ChannelNotFound(), FileNotFoundError)
        aborted = errors.ChannelAborted("the writer trapped")
        self.assertEqual((aborted.kind, aborted.detail), ("aborted", "the writer trapped"))
        self.assertIn("the writer trapped", str(aborted))


if __name__ == "__main__":
    unittest.main()
