"""Speed of srlib against a plain baseline, measured in one process.

    python -m srlib.bench                         # CPU: width 64 at 64 and 192 px, a few minutes on 2 cores
    python -m srlib.bench --threads 1 --clock cpu # the cross-check least disturbed by other processes
    python -m srlib.bench --device cuda --batch 16 --repeats 10 --json bench.json

For each image size, on the same weights, images and noise:

evaluation
    images/s of srlib (``restoration_error`` then ``anomaly_map``, the model
    in srlib's memory format) and of the plain baseline written below (the
    authors' loop: one draw at a time, contiguous tensors, ``torch.no_grad``),
    the largest difference between their maps relative to the largest map
    value, the FLOPs of an image (convolutions and matrix products, counted
    by torch's ``FlopCounterMode``), the GFLOP/s that achieves and the rate
    of a large fp32 matrix product measured in the same rounds;
training
    images/s of srlib's training step (``srlib.run.train.train_step``: fused
    AdamW, one foreach EMA update, srlib's memory format, the loss left on
    the device) and of a plain step (AdamW without foreach or fused kernels,
    the EMA parameter by parameter, contiguous, ``loss.item()`` every step);
memory
    peak memory of one call of each: on CUDA the allocator's peak above what
    was allocated before; on the CPU the growth of the resident set (VmHWM
    after the call, reset before it, minus VmRSS before it).

Baseline and srlib take turns round after round, in alternating order, and
medians are reported, so load from other processes falls on both alike.
``--clock cpu`` times with the process's CPU time (all threads together):
with ``--threads 1`` it is the measurement least disturbed by a busy machine.

Modules: :mod:`.sides` (the baseline and srlib's side), :mod:`.measure`
(timing, memory, FLOPs), :mod:`.command` (one size, the report, the options).
"""
