"""Kernel behaviour beyond the conformance suite, through real Jupyter clients:

- a notebook executed by `jupyter nbconvert --execute --allow-errors`, and the same notebook
  run by `latentlab run`, both keep execution counts, an execute_result, a multi-MIME output
  updated in place (saved as its last state), and an error followed by cells that still ran;
- interrupting a running training loop stops it at a step boundary, and the kernel, the weights
  and the step count survive so training can continue;
- wrongly signed and malformed messages on shell and control are dropped, never executed.

Run with Debian's Python (/usr/bin/python3 test/kernel/test_protocol.py); the `latentlab`
kernelspec must be findable (JUPYTER_PATH).
"""
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import nbformat
from jupyter_client.manager import start_new_kernel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(HERE, "protocol.ipynb")


def run_cell(kc, code, timeout=60):
    """Executes code; returns (reply, [iopub messages for it])."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    msgs = []
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
        msgs.append(m)
    return reply, msgs


def text_result(msgs):
    for m in msgs:
        if m["msg_type"] == "execute_result":
            return m["content"]["data"]["text/plain"]
    return None


class ExecutedNotebook:
    def check(self, nb):
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        self.assertEqual([c.execution_count for c in code], [1, 2, 3, 4])
        value, live, error, after = code
        results = [o for o in value.outputs if o.output_type == "execute_result"]
        self.assertEqual(results[0]["data"]["text/plain"], "42")
        displays = [o for o in live.outputs if o.output_type == "display_data"]
        self.assertEqual(len(displays), 1, "one output, updated in place")
        self.assertEqual(displays[0]["data"]["text/plain"], "frame 4", "saved as its last state")
        self.assertIn("<b>frame 4</b>", displays[0]["data"]["text/html"])
        self.assertIn("image/svg+xml", displays[0]["data"])
        errors = [o for o in error.outputs if o.output_type == "error"]
        self.assertEqual((errors[0]["ename"], errors[0]["evalue"]), ("TypeError", "deliberate failure"))
        self.assertTrue(any("deliberate failure" in line for line in errors[0]["traceback"]))
        streams = "".join(o.get("text", "") for o in after.outputs if o.output_type == "stream")
        self.assertIn("after the error", streams)
        self.assertEqual([o for o in after.outputs if o.output_type == "execute_result"][0]["data"]["text/plain"], "43")


class NbconvertTests(ExecutedNotebook, unittest.TestCase):
    def test_nbconvert_execute_allow_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "executed.ipynb")
            subprocess.run(
                [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute", "--allow-errors",
                 "--ExecutePreprocessor.kernel_name=latentlab", "--ExecutePreprocessor.timeout=120",
                 "--output", out, FIXTURE],
                check=True, capture_output=True, cwd=HERE,
            )
            self.check(nbformat.read(out, as_version=4))

    def test_latentlab_run_gives_the_same_kinds_of_outputs(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "run.ipynb")
            r = subprocess.run(["node", os.path.join(ROOT, "kernel", "cli.js"), "run", FIXTURE, "--out", out, "--allow-errors"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, "a failing cell makes the run exit non-zero, even with --allow-errors")
            self.assertIn("cell 4", r.stderr)
            self.assertIn("TypeError: deliberate failure", r.stderr)
            self.check(nbformat.read(out, as_version=4))


class LiveKernelTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name="latentlab", cwd=HERE)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel(now=True)

    def test_updates_in_place_several_times(self):
        _, msgs = run_cell(
            self.kc,
            'import * as lab from "latentlab";\n'
            "const o = lab.live({ minIntervalMs: 0 });\n"
            "for (let i = 1; i <= 4; i++) {\n"
            '  o.update({ [lab.mime]: () => ({ "text/plain": `f${i}`, "text/html": `<i>${i}</i>` }) });\n'
            "  await new Promise((r) => setTimeout(r, 30));\n"
            "}",
        )
        kinds = [m["msg_type"] for m in msgs]
        self.assertEqual(kinds.count("display_data"), 1)
        self.assertGreaterEqual(kinds.count("update_display_data"), 3)
        ids = {m["content"]["transient"]["display_id"] for m in msgs if m["msg_type"] in ("display_data", "update_display_data")}
        self.assertEqual(len(ids), 1, "every update targets the same display id")

    def test_interrupt_stops_training_at_a_step_boundary(self):
        setup = (
            'import * as lab from "latentlab";\n'
            "const model = lab.gan({ data: lab.data.ring8({ n: 2048 }), seed: 0 });\n"
            'const weights = () => Array.from(model.G.variables().get("G/fc0/kernel")!.dataSync().slice(0, 4));\n'
            "await model.train({ steps: 5, live: false }); model.stepCount"
        )
        reply, _ = run_cell(self.kc, setup)
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        msg_id = self.kc.execute("await model.train({ steps: 1_000_000, live: true });")
        time.sleep(3)
        t0 = time.time()
        self.km.interrupt_kernel()  # SIGINT, as Jupyter's stop button sends
        reply = self.kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=30)
        stopped_after = time.time() - t0
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "Interrupted")
        self.assertIn("keeps its weights, optimizer state and history", reply["content"]["evalue"])
        self.assertLess(stopped_after, 2.0, "stopped at the next step boundary, not after the grace period")
        _, msgs = run_cell(self.kc, "JSON.stringify([model.stepCount, model.history.length, weights()])")
        steps1, history1, w1 = json.loads(eval(text_result(msgs)))
        self.assertGreater(steps1, 5)
        self.assertEqual(history1, steps1, "every step that ran is in the history; none ran half")
        time.sleep(1)
        _, msgs = run_cell(self.kc, "JSON.stringify([model.stepCount, weights()])")
        steps2, w2 = json.loads(eval(text_result(msgs)))
        self.assertEqual(steps2, steps1, "the loop is not running in the background")
        self.assertEqual(w2, w1, "the weights are as the last step left them")
        reply, msgs = run_cell(self.kc, "await model.train({ steps: 3, live: false }); model.stepCount")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(int(text_result(msgs)), steps1 + 3, "training continues from where it stopped")


class SignatureTests(unittest.TestCase):
    """Messages a kernel must refuse: it runs code, so its guard is the HMAC signature."""

    @classmethod
    def setUpClass(cls):
        cls.km, cls.kc = start_new_kernel(kernel_name="latentlab", cwd=HERE)

    @classmethod
    def tearDownClass(cls):
        cls.kc.stop_channels()
        cls.km.shutdown_kernel(now=True)

    def frames(self, code, key, signature=None, drop_delimiter=False, bad_json=False):
        header = {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                  "username": "attacker", "date": "2026-01-01T00:00:00Z", "version": "5.3"}
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False}
        parts = [json.dumps(header).encode(), b"{}", b"{}", json.dumps(content).encode()]
        if bad_json:
            parts[3] = b"{not json"
        sig = hmac.new(key, b"".join(parts), hashlib.sha256).hexdigest().encode() if signature is None else signature
        return ([] if drop_delimiter else [b"<IDS|MSG>"]) + [sig] + parts

    def test_bad_messages_are_dropped_and_the_kernel_keeps_serving(self):
        import zmq
        info = self.km.get_connection_info()
        ctx = zmq.Context.instance()
        attacks = [
            dict(key=b"not-the-key"),                       # wrong key
            dict(key=info["key"], signature=b""),           # missing signature
            dict(key=info["key"], signature=b"0" * 64),     # forged signature
            dict(key=info["key"], drop_delimiter=True),     # malformed framing
            dict(key=info["key"], bad_json=True),           # malformed content (signed)
        ]
        for port_name in ("shell_port", "control_port"):
            sock = ctx.socket(zmq.DEALER)
            sock.connect(f"{info['transport']}://{info['ip']}:{info[port_name]}")
            for i, attack in enumerate(attacks):
                sock.send_multipart(self.frames(f'(globalThis as any).pwned = "{port_name}-{i}";', **attack))
            time.sleep(0.5)
            self.assertEqual(sock.poll(500), 0, f"no reply to any bad message on {port_name}")
            sock.close(linger=0)
        reply, msgs = run_cell(self.kc, '(globalThis as any).pwned ?? "untouched"')
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(text_result(msgs), "'untouched'")


if __name__ == "__main__":
    unittest.main(verbosity=2)
