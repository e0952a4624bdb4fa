"""torch.nn.LSTM's training step for `bench train --torch`, run in a process of its own.

PyTorch shares no process with TensorFlow here: triton, which PyTorch's wheels pull in
and which a torch optimizer imports, crashes a process that has loaded TensorFlow first.
`TorchStep` starts this module as a worker (`python -m lstm_textgen.bench.torch_worker`)
and each call runs one training step there, so the benchmark still times every variant
in alternation, round by round. The worker imports only the standard library and torch.

Protocol, one line each way: the worker answers its start with `ready` or `error: WHY`
(`WHY` starts with `torch is not installed` when the import fails), then every `step`
line with `done` (or `error: WHY`), and exits at any other line (`quit`) or at the end
of its input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


class TorchStepError(RuntimeError):
    """The worker could not start or could not run a step; the message says why."""


class TorchStep:
    """A callable that runs one torch.nn.LSTM training step in the worker process.

    Args:
        units, batch, seq_len: the benchmark's H, batch size and sequence length.
        vocab, embed, layers: the benchmark model's vocabulary, embedding width and
            number of LSTM layers.
        threads: torch's intra-op threads (the benchmark passes TensorFlow's).
        bfloat16: run the forward pass under `torch.autocast("cpu", torch.bfloat16)`.

    Raises `TorchStepError` when torch is missing or the first step fails (e.g. no
    bfloat16 LSTM in oneDNN on this CPU). Call `close()` when done.

    Example:

    >>> step = TorchStep(8, 2, 3, vocab=66, embed=4, layers=1, threads=1)  # doctest: +SKIP
    >>> step()  # doctest: +SKIP
    >>> step.close()  # doctest: +SKIP
    """

    def __init__(self, units, batch, seq_len, *, vocab, embed, layers, threads, bfloat16=False):
        settings = dict(
            units=units,
            batch=batch,
            seq_len=seq_len,
            vocab=vocab,
            embed=embed,
            layers=layers,
            threads=threads,
            bfloat16=bfloat16,
        )
        # PyTorch's OpenMP threads otherwise keep spinning on the cores after each of its
        # steps and slow down whichever variant is timed next.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            self._expect("ready")
        except TorchStepError:
            self.close()
            raise

    def __call__(self):
        self._send("step")
        self._expect("done")

    def close(self):
        if self._process.poll() is None:
            try:
                self._send("quit")
            except (BrokenPipeError, OSError):
                pass
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            stream.close()

    def _send(self, line):
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()

    def _expect(self, answer):
        line = self._process.stdout.readline().strip()
        if line != answer:
            why = line.removeprefix("error: ") if line else "the torch worker exited"
            raise TorchStepError(why)


def _training_step(torch, settings):
    """The step function the worker runs: Embedding -> LSTM layers -> Linear, Adam."""
    torch.set_num_threads(settings["threads"])
    vocab, units = settings["vocab"], settings["units"]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, settings["embed"])
            self.lstm = torch.nn.LSTM(
                settings["embed"], units, num_layers=settings["layers"], batch_first=True
            )
            self.head = torch.nn.Linear(units, vocab)

        def forward(self, x):
            return self.head(self.lstm(self.embed(x))[0])

    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    shape = (settings["batch"], settings["seq_len"])
    x = torch.randint(1, vocab, shape)
    y = torch.randint(1, vocab, shape)

    def step():
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings["bfloat16"]):
            logits = net(x).reshape(-1, vocab)
        loss = torch.nn.functional.cross_entropy(logits.float(), y.reshape(-1))
        loss.backward()
        optimizer.step()

    return step


def _first_line(error):
    """What the parent prints of an exception: its message's first line, or its type."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _answer(line):
    print(line, flush=True)


def main(argv=None):
    """The worker: `python -m lstm_textgen.bench.torch_worker SETTINGS_JSON`."""
    settings = json.loads((sys.argv[1:] if argv is None else argv)[0])
    try:
        import torch
    except ImportError as e:
        _answer(f"error: torch is not installed ({e})")
        return
    try:
        step = _training_step(torch, settings)
        step()  # fails here, not in the timed rounds, where a CPU lacks a kernel
    except Exception as e:  # noqa: BLE001 - the parent prints why the variant is left out
        _answer(f"error: {_first_line(e)}")
        return
    _answer("ready")
    for line in sys.stdin:
        if line.strip() != "step":
            return
        try:
            step()
        except Exception as e:  # noqa: BLE001
            _answer(f"error: {_first_line(e)}")
            return
        _answer("done")


if __name__ == "__main__":
    main()
