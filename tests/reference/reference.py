#!/usr/bin/env python3
"""An independent PyTorch reference for the KLAL pipeline's model, losses and optimizer.

Written from the TypeScript sources' *behaviour*, not translated line by line:

  model      pipeline/model/tiny_vlm.ts  (TinyVlm.forward)
  losses     pipeline/model/losses.ts          (ntpLoss, klalLoss, visualAttention, ROW_FLOOR)
  query rows pipeline/model/batch.ts           (queryStart, queryCount) and train.ts (answerToVisual)
  optimizer  pipeline/train/loop.ts           (AdamW.apply: global-norm clip, decoupled decay on
                                          matrices only)
  FLOPs      pipeline/commands/bench.ts           (trainingFlopsPerSample)

Modes:

  reference.py check DIR [DIR ...]
      DIR/case.json names the config, the layout, lambda, the KLAL layers, the optimizer
      step and the tensors (raw little-endian float32/int32 files beside it), as written by
      tests/reference_test.ts. Computes, in float64, L_NTP, L_KLAL, L_total, the gradient
      of L_total w.r.t. every weight and the weights after one AdamW step; writes
      DIR/torch.json plus raw little-endian float64 files DIR/torch.grad.NAME.bin and
      DIR/torch.step.NAME.bin. Add --device cuda to compute on the GPU (still float64).

  reference.py bench --device cuda|cpu --batch B --steps N [--warmup W] [--json]
      Trains the paper-size model (bench.ts BENCH_MODELS.paper: d 128, 4 layers, 4 heads,
      64x64 images in 8 px patches = 64 visual tokens + 10 text tokens = 74) with NTP + KLAL
      (lambda 1, all layers) and AdamW on random data, float32 with TF32 off, and prints
      samples/s and model GFLOP/s counted with bench.ts's formula. Warm-up steps excluded.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# pipeline/model/losses.ts: added to each (head, query) row's visual mass before renormalising.
ROW_FLOOR = 1e-6
# pipeline/model/losses.ts: default lower clamp of Q before the log.
KLAL_EPSILON = 1e-8
# pipeline/model/tiny_vlm.ts: layerNorm's epsilon, GELU's sigmoid slope, the mask's bias.
LAYER_NORM_EPSILON = 1e-5
GELU_SLOPE = 1.702
MASK_BIAS = 1e9

# ---------------------------------------------------------------------------------------
# Model


def weight_names(layers):
    """The model's parameters in TinyVlm's order (its `variables()`)."""
    names = ["patch.w", "patch.b", "token", "position.row", "position.col", "position.text"]
    for l in range(layers):
        names += [f"h{l}.{n}" for n in (
            "ln1.g", "ln1.b", "qkv.w", "qkv.b", "proj.w", "proj.b",
            "ln2.g", "ln2.b", "fc.w", "fc.b", "out.w", "out.b")]
    return names + ["lnf.g", "lnf.b", "head.w"]


def weight_shapes(cfg):
    d, r, v = cfg["dModel"], cfg["mlpRatio"], cfg["vocab"]
    shapes = {
        "patch.w": [cfg["patchDim"], d], "patch.b": [d], "token": [v, d],
        "position.row": [cfg["gridSide"], d], "position.col": [cfg["gridSide"], d],
        "position.text": [cfg["maxText"], d],
        "lnf.g": [d], "lnf.b": [d], "head.w": [d, v],
    }
    for l in range(cfg["layers"]):
        shapes.update({
            f"h{l}.ln1.g": [d], f"h{l}.ln1.b": [d],
            f"h{l}.qkv.w": [d, 3 * d], f"h{l}.qkv.b": [3 * d],
            f"h{l}.proj.w": [d, d], f"h{l}.proj.b": [d],
            f"h{l}.ln2.g": [d], f"h{l}.ln2.b": [d],
            f"h{l}.fc.w": [d, r * d], f"h{l}.fc.b": [r * d],
            f"h{l}.out.w": [r * d, d], f"h{l}.out.b": [d],
        })
    return shapes


def gelu(x):
    """The sigmoid approximation x * sigmoid(1.702 x) the model uses (not erf GELU)."""
    return x * torch.sigmoid(GELU_SLOPE * x)


def forward(w, cfg, patches, text, key_mask):
    """Logits [B, T, V] and per-layer attention probabilities [B, H, T, T]."""
    b, tv, _ = patches.shape
    tt = text.shape[1]
    t = tv + tt
    d, heads = cfg["dModel"], cfg["heads"]
    dh = d // heads
    side = cfg["gridSide"]
    assert tv == side * side, f"expected {side * side} visual tokens, got {tv}"

    visual = patches @ w["patch.w"] + w["patch.b"]  # [B, Tv, d]
    words = F.embedding(text.long(), w["token"])  # [B, Tt, d]; same as the one-hot matmul
    # Visual token r * side + c sits at grid row r, column c.
    grid = w["position.row"][:, None, :] + w["position.col"][None, :, :]  # [side, side, d]
    positions = torch.cat([grid.reshape(tv, d), w["position.text"][:tt]])  # [T, d]
    x = torch.cat([visual, words], dim=1) + positions  # [B, T, d]

    causal = torch.tril(torch.ones(t, t, dtype=x.dtype, device=x.device))
    allowed = causal * key_mask.reshape(b, 1, 1, t)  # [B, 1, T, T]
    bias = (allowed - 1) * MASK_BIAS

    attentions = []
    for l in range(cfg["layers"]):
        p = lambda n: w[f"h{l}.{n}"]  # noqa: E731
        h = F.layer_norm(x, (d,), p("ln1.g"), p("ln1.b"), LAYER_NORM_EPSILON)
        q, k, v = (h @ p("qkv.w") + p("qkv.b")).split(d, dim=2)
        q, k, v = (m.reshape(b, t, heads, dh).transpose(1, 2) for m in (q, k, v))  # [B, H, T, dh]
        scores = q @ k.transpose(2, 3) / math.sqrt(dh) + bias  # [B, H, T, T]
        probs = torch.softmax(scores, dim=-1)
        attentions.append(probs)
        mixed = (probs @ v).transpose(1, 2).reshape(b, t, d)
        x = x + mixed @ p("proj.w") + p("proj.b")
        h2 = F.layer_norm(x, (d,), p("ln2.g"), p("ln2.b"), LAYER_NORM_EPSILON)
        x = x + gelu(h2 @ p("fc.w") + p("fc.b")) @ p("out.w") + p("out.b")
    final = F.layer_norm(x, (d,), w["lnf.g"], w["lnf.b"], LAYER_NORM_EPSILON)
    return final @ w["head.w"], attentions


# ---------------------------------------------------------------------------------------
# Losses


def ntp_loss(logits, next_token, loss_mask):
    """Mean cross-entropy over the positions where loss_mask is 1 (at least 1 in the count)."""
    per_token = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), next_token.reshape(-1).long(), reduction="none"
    ).reshape(loss_mask.shape)
    return (per_token * loss_mask).sum() / loss_mask.sum().clamp(min=1)


def klal_loss(attentions, layers, layout, target, query_mask, epsilon=KLAL_EPSILON):
    """Mean over the supervised layers and the batch of KL(P || Q_l)."""
    tv = layout["visual"]
    q0 = layout["visual"] + layout["prompt"] - 1  # batch.ts queryStart
    tq = layout["answer"] - 1  # batch.ts queryCount
    # sum_i P_i log P_i with 0 log 0 = 0.
    p_log_p = torch.xlogy(target, target).sum(1)  # [B]
    counts = query_mask.sum(1, keepdim=True).clamp(min=1)  # [B, 1]
    total = 0
    for l in layers:
        a = attentions[l][:, :, q0:q0 + tq, :tv]  # [B, H, Tq, Tv]
        rows = a / (a.sum(3, keepdim=True) + ROW_FLOOR)
        per_query = rows.mean(1)  # [B, Tq, Tv]
        q = (per_query * query_mask[:, :, None]).sum(1) / counts  # [B, Tv]
        q = q.clamp(min=epsilon)
        total = total + (p_log_p - (target * q.log()).sum(1)).mean()
    return total / len(layers)


def losses(w, cfg, batch, layout, lam, layers):
    logits, attentions = forward(w, cfg, batch["patches"], batch["text"], batch["keyMask"])
    ntp = ntp_loss(logits, batch["nextToken"], batch["lossMask"])
    klal = klal_loss(attentions, layers, layout, batch["target"], batch["queryMask"])
    total = ntp + lam * klal if lam > 0 else ntp
    return ntp, klal, total


# ---------------------------------------------------------------------------------------
# AdamW as pipeline/train/loop.ts applies it


class AdamW:
    """Adam with decoupled weight decay on parameters of rank >= 2, after clipping the
    global gradient norm to clip_norm (train.ts's AdamW.apply)."""

    def __init__(self, params, weight_decay, beta1=0.9, beta2=0.999, eps=1e-8):
        self.params = params
        self.weight_decay = weight_decay
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads, lr, clip_norm=0.0):
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        scale = (clip_norm / norm.clamp(min=1e-12)).clamp(max=1) if clip_norm > 0 else 1
        self.t += 1
        c1 = 1 - self.beta1 ** self.t
        c2 = 1 - self.beta2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            g = g * scale
            m.mul_(self.beta1).add_(g, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            if self.weight_decay > 0 and p.dim() >= 2:
                p.mul_(1 - lr * self.weight_decay)
            p.sub_(lr * (m / c1) / ((v / c2).sqrt() + self.eps))
        return norm


# ---------------------------------------------------------------------------------------
# check


def read_raw(path, dtype, shape):
    data = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"))
    expected = int(np.prod(shape)) if shape else 1
    if data.size != expected:
        raise SystemExit(f"{path}: {data.size} values, expected {expected} for shape {shape}")
    return data.reshape(shape)


def write_raw(path, tensor):
    tensor.detach().cpu().numpy().astype("<f8").tofile(path)


def check(case_dir, device):
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    cfg = case["config"]
    dtype = torch.float64

    def load(entry):
        array = read_raw(os.path.join(case_dir, entry["file"]), entry["dtype"], entry["shape"])
        tensor = torch.from_numpy(array.copy()).to(device)
        return tensor.to(dtype) if entry["dtype"] == "float32" else tensor

    shapes = weight_shapes(cfg)
    names = weight_names(cfg["layers"])
    if sorted(names) != sorted(case["weights"]):
        raise SystemExit(f"{case_dir}: weights {sorted(case['weights'])} != {sorted(names)}")
    w = {}
    for n in names:
        if case["weights"][n]["shape"] != shapes[n]:
            raise SystemExit(f"{n}: shape {case['weights'][n]['shape']} != {shapes[n]}")
        w[n] = load(case["weights"][n]).requires_grad_(True)
    batch = {k: load(v) for k, v in case["batch"].items()}

    ntp, klal, total = losses(w, cfg, batch, case["layout"], case["lambda"], case["layers"])
    grads = torch.autograd.grad(total, [w[n] for n in names])
    params = [w[n].detach().clone() for n in names]
    opt = case["adamw"]
    optimizer = AdamW(params, opt["weightDecay"], eps=opt["epsilon"])
    grad_norm = optimizer.step(list(grads), opt["lr"], opt["clipNorm"])

    out = {
        "dtype": "float64",
        "torch": torch.__version__,
        "device": str(device),
        "ntp": ntp.item(),
        "klal": klal.item(),
        "total": total.item(),
        "gradNorm": grad_norm.item(),
        "grads": {},
        "step": {},
    }
    for n, g, p in zip(names, grads, params):
        write_raw(os.path.join(case_dir, f"torch.grad.{n}.bin"), g)
        write_raw(os.path.join(case_dir, f"torch.step.{n}.bin"), p)
        out["grads"][n] = {"file": f"torch.grad.{n}.bin", "dtype": "float64", "shape": shapes[n]}
        out["step"][n] = {"file": f"torch.step.{n}.bin", "dtype": "float64", "shape": shapes[n]}
    with open(os.path.join(case_dir, "torch.json"), "w") as f:
        json.dump(out, f, indent=1)
    return out


# ---------------------------------------------------------------------------------------
# bench

# bench.ts BENCH_MODELS.paper and the layout its Grid Patch data gets (tokenizer of all
# tasks: 158 ids; prompt "where is the red patch ?" in 6 slots, answer "r , c" + <eos> in 4).
PAPER = {
    "config": {"patchDim": 192, "vocab": 158, "dModel": 128, "layers": 4, "heads": 4,
               "mlpRatio": 4, "gridSide": 8, "maxText": 32},
    "layout": {"visual": 64, "prompt": 6, "answer": 4},
}


def training_flops_per_sample(tv, tt, patch_dim, vocab, d, layers, mlp_ratio):
    """Mirrors trainingFlopsPerSample in pipeline/commands/bench.ts: 3x the forward matmul FLOPs."""
    t = tv + tt
    per_layer = (2 * t * d * 3 * d + 4 * t * t * d + 2 * t * d * d
                 + 4 * t * d * mlp_ratio * d)
    forward_flops = (2 * tv * patch_dim * d + 2 * tt * vocab * d + layers * per_layer
                     + 2 * t * d * vocab)
    return 3 * forward_flops


def random_batch(cfg, layout, b, device, generator):
    tv, prompt, answer = layout["visual"], layout["prompt"], layout["answer"]
    tt = prompt + answer
    t = tv + tt
    q0 = tv + prompt - 1
    next_token = torch.zeros(b, t, dtype=torch.long)
    next_token[:, q0:q0 + answer] = torch.randint(0, cfg["vocab"], (b, answer), generator=generator)
    loss_mask = torch.zeros(b, t)
    loss_mask[:, q0:q0 + answer] = 1
    target = F.one_hot(torch.randint(0, tv, (b,), generator=generator), tv).float()
    batch = {
        "patches": torch.rand(b, tv, cfg["patchDim"], generator=generator),
        "text": torch.randint(0, cfg["vocab"], (b, tt), generator=generator),
        "keyMask": torch.ones(b, t),
        "nextToken": next_token,
        "lossMask": loss_mask,
        "queryMask": torch.ones(b, answer - 1),
        "target": target,
    }
    return {k: v.to(device) for k, v in batch.items()}


def bench(device, batch_size, steps, warmup):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cfg, layout = PAPER["config"], PAPER["layout"]
    generator = torch.Generator().manual_seed(0)
    shapes = weight_shapes(cfg)
    names = weight_names(cfg["layers"])
    w = {}
    for n in names:  # the values do not matter for speed; keep activations sane
        if n.endswith(".g"):
            w[n] = torch.ones(shapes[n])
        elif n.endswith(".b"):
            w[n] = torch.zeros(shapes[n])
        else:
            w[n] = torch.randn(shapes[n], generator=generator) * 0.02
    w = {n: p.to(device).requires_grad_(True) for n, p in w.items()}
    params = [w[n] for n in names]
    optimizer = AdamW([p.data for p in params], weight_decay=0.01)
    batch = random_batch(cfg, layout, batch_size, device, generator)
    layers = list(range(cfg["layers"]))

    def step():
        # bench.ts trainStep: NTP + KLAL (lambda 1, all layers), AdamW lr 1e-4, clip 1,
        # and the loss read back every step.
        _, _, total = losses(w, cfg, batch, layout, 1.0, layers)
        grads = torch.autograd.grad(total, params)
        optimizer.step(list(grads), 1e-4, 1.0)
        return total.item()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - started
    flops = training_flops_per_sample(
        layout["visual"], layout["prompt"] + layout["answer"], cfg["patchDim"], cfg["vocab"],
        cfg["dModel"], cfg["layers"], cfg["mlpRatio"])
    samples_per_second = steps * batch_size / seconds
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "model": "paper",
        "backend": f"pytorch-{device.type}",
        "deviceName": name,
        "torch": torch.__version__,
        "tf32": False,
        "threads": torch.get_num_threads(),
        "batch": batch_size,
        "tokens": layout["visual"] + layout["prompt"] + layout["answer"],
        "steps": steps,
        "warmup": warmup,
        "samplesPerSecond": samples_per_second,
        "gflopsPerSecond": samples_per_second * flops / 1e9,
        "msPerStep": 1000 * seconds / steps,
        "flopsPerSample": flops,
        "finalLoss": loss,
    }


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p_check = sub.add_parser("check", help="losses, gradients and one AdamW step of a dumped case")
    p_check.add_argument("dirs", nargs="+")
    p_check.add_argument("--device", default="cpu")
    p_bench = sub.add_parser("bench", help="paper-model training throughput")
    p_bench.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p_bench.add_argument("--batch", type=int, default=64)
    p_bench.add_argument("--steps", type=int, default=20)
    p_bench.add_argument("--warmup", type=int, default=3)
    p_bench.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if args.mode == "check":
        for d in args.dirs:
            out = check(d, device)
            print(f"{d}: ntp {out['ntp']:.6f} klal {out['klal']:.6f} total {out['total']:.6f}")
        return 0
    result = bench(device, args.batch, args.steps, args.warmup)
    if args.json:
        print(json.dumps(result, indent=2))
    # With --json the summary line goes to stderr, so stdout stays one JSON document.
    print(f"train {result['backend']} paper (batch {result['batch']}, {result['tokens']} "
              f"tokens): {result['samplesPerSecond']:.0f} samples/s, "
              f"{result['gflopsPerSecond']:.1f} GFLOP/s, {result['msPerStep']:.1f} ms/step",
          file=sys.stderr if args.json else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
