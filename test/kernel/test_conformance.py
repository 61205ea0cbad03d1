"""The official Jupyter kernel conformance suite (jupyter_kernel_test) against `latentlab`.

Run with Debian's Python: /usr/bin/python3 -m unittest -v test/kernel/test_conformance.py
(the kernel must be registered first: npm run kernel:install).
"""
import unittest

import jupyter_kernel_test as jkt


class LatentLabKernelTests(jkt.KernelTests):
    kernel_name = "latentlab"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("oops")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"a" + "b"', "result": "'ab'"},
        {"code": "[1, 2].length", "result": "2"},
    ]
    code_history_pattern = "6 *"
    supported_history_operations = ("tail", "range", "search")

    code_display_data = [
        {"code": 'import * as lab from "latentlab";\nlab.show({ [lab.mime]: () => ({ "text/html": "<b>hi</b>", "text/plain": "hi" }) });', "mime": "text/html"},
        {"code": 'import * as tslab from "tslab";\ntslab.display.png(new Uint8Array([137, 80, 78, 71]));', "mime": "image/png"},
    ]

    code_generate_error = 'throw new Error("boom")'

    completion_samples = [
        {"text": "Math.fl", "matches": {"floor"}},
    ]
    complete_code_samples = ["1 + 1", "const x = 3;", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {", "const a = [1,", "if (true) {"]

    code_inspect_sample = "Math.max"

    code_clear_output = 'import * as lab from "latentlab";\nlab.clearOutput();'


if __name__ == "__main__":
    unittest.main()
