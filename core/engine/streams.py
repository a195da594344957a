"""Reader threads' own CUDA streams: plates upload and convert beside the model, not behind it.

PyTorch queues every thread's GPU work on the device's default stream unless told otherwise,
so a reader thread's upload, colour conversion and resize would wait for the model's forward
queued before them, and its bad-pixel count (read back to the host) would wait for the whole
forward: read-ahead would stop reading ahead. Each reader thread gets a stream of its own
(PyTorch's pool streams do not wait on the default stream), finishes it before handing the
frame over, and marks the tensors it hands over as used by the consumer's stream, so their
memory is not reused while the model still reads them. Off CUDA this is nothing.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

_local = threading.local()


class ReaderStream:
    """`with ReaderStream(device) as stream: ...; stream.hand_over(tensor, ...)`."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._stream = self._context = None
        if self.device.type == "cuda":
            stream = getattr(_local, "stream", None)
            if stream is None or stream.device != self.device:
                stream = _local.stream = torch.cuda.Stream(self.device)
            self._stream = stream

    def __enter__(self) -> "ReaderStream":
        if self._stream is not None:
            self._context = torch.cuda.stream(self._stream)
            self._context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._stream is not None:
            self._context.__exit__(*exc)
            self._stream.synchronize()  # the frame is complete before another thread uses it

    def hand_over(self, *tensors: Any) -> None:
        """Tensors made on this stream that the caller's stream (the model's) will read."""
        if self._stream is None:
            return
        consumer = torch.cuda.current_stream(self.device)
        for tensor in tensors:
            if torch.is_tensor(tensor) and tensor.device.type == "cuda":
                tensor.record_stream(consumer)
