"""The C kernels compute what the layers they replace compute (conv -> max-pool -> ReLU over
the raw spectra; max-pool -> ReLU later on), step aside wherever they do not apply, and
training takes the same numbers with them or without them."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from spectragrid.core.config import complete_model
from spectragrid.train.architectures.planar import (
    PlanarBatchNorm1d,
    PlanarConv1d,
    PlanarMaxPool1d,
    PlanarSequential,
)
from spectragrid.train.models import build_model
from spectragrid.train.native import KernelPaths, build, first_stage, pool_relu


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Each test module builds into its own cache, so a test sees a real first build."""
    monkeypatch.setenv("SPECTRAGRID_CACHE", str(tmp_path_factory.getbasetemp() / "native-cache"))
    monkeypatch.delenv("SPECTRAGRID_NATIVE", raising=False)
    monkeypatch.delenv("CC", raising=False)
    build.load.cache_clear()
    yield
    build.load.cache_clear()


@pytest.fixture
def kernel():
    if build.load("first_stage") is None or build.load("pool_relu") is None:
        pytest.skip("no working C compiler on this machine: the kernel is off by design")


def stage(c_in: int, c_out: int, k: int, pool: int, bias: bool = True) -> PlanarSequential:
    torch.manual_seed(0)
    return PlanarSequential(
        PlanarConv1d(c_in, c_out, k, padding=k // 2, bias=bias),
        PlanarMaxPool1d(pool),
        nn.ReLU(inplace=True),
        PlanarConv1d(c_out, 16, 3, padding=1),
    )


def run(trunk: PlanarSequential, x: torch.Tensor, grad: torch.Tensor, *, kernel: bool, bf16=False):
    """Output and parameter gradients of one training pass, with or without the kernel."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECTRAGRID_NATIVE", "1" if kernel else "0")
        trunk.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = trunk(x)
        (out.float() * grad).sum().backward()
    return out.detach(), {name: p.grad.clone() for name, p in trunk.named_parameters()}


SHAPES = [
    # c_in, c_out, kernel, pool, length, bias
    (3, 16, 7, 4, 446, True),  # the demo's first stage
    (1, 32, 3, 2, 51, False),  # odd length: the last point is not pooled
    (5, 16, 5, 3, 100, True),
    (2, 16, 9, 5, 7, True),  # one pooled output, padding wider than the sequence's rest
]


@pytest.mark.parametrize(("c_in", "c_out", "k", "pool", "length", "bias"), SHAPES)
def test_float32_outputs_and_gradients_equal_the_layers(kernel, c_in, c_out, k, pool, length, bias):
    trunk = stage(c_in, c_out, k, pool, bias)
    x = torch.randn(6, c_in, length)
    grad = torch.randn(6, 16 * (length // pool))
    ours, our_grads = run(trunk, x, grad, kernel=True)
    theirs, their_grads = run(trunk, x, grad, kernel=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert our_grads.keys() == their_grads.keys()
    for name, value in their_grads.items():
        torch.testing.assert_close(our_grads[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_the_kernel_runs_and_agrees_with_itself_on_one_and_two_threads(kernel):
    conv, pool = PlanarConv1d(3, 32, 7, padding=3), PlanarMaxPool1d(4)
    x = torch.randn(9, 3, 200)
    results = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            conv.zero_grad(set_to_none=True)
            out = first_stage.first_stage(conv, pool, x)
            out.sum().backward()
            results.append((out.detach(), conv.weight.grad.clone(), conv.bias.grad.clone()))
    finally:
        torch.set_num_threads(before)
    for one, two in zip(*results, strict=True):
        torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-5)


def test_bf16_output_is_the_float32_result_rounded_and_gradients_match(kernel):
    """Under bf16 autocast the kernel still computes in float32 and rounds its output
    as torch rounds; given the same upstream gradient its weight gradients are those
    of the float32 pass."""
    conv, pool = PlanarConv1d(3, 16, 7, padding=3), PlanarMaxPool1d(4)
    x = torch.randn(8, 3, 446)
    upstream = torch.randn(8, 16, 1, 111).to(torch.bfloat16)

    def once(bf16: bool):
        conv.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = first_stage.first_stage(conv, pool, x)
        out.backward(upstream.to(out.dtype).contiguous(memory_format=torch.channels_last))
        return out.detach(), conv.weight.grad.clone(), conv.bias.grad.clone()

    out16, w16, b16 = once(True)
    out32, w32, b32 = once(False)
    assert out16.dtype == torch.bfloat16 and out32.dtype == torch.float32
    assert out16.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out16, out32.to(torch.bfloat16))
    torch.testing.assert_close(w16, w32, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b16, b32, rtol=1e-6, atol=1e-6)


def demo_cnn() -> torch.nn.Module:
    """The default study's CNN at the demo's shape: 3 channels of 446 points, 2 tabular."""
    torch.manual_seed(0)
    params = complete_model({"arch": "cnn"})["params"]
    return build_model("cnn", params, 3, 446, 2, 2)


def demo_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    spectra = torch.rand(64, 3, 446, generator=g) * 5000
    return spectra, torch.rand(64, 2, generator=g), torch.randint(0, 2, (64,), generator=g)


def bf16_first_stage(layers, planar):
    """The first stage's layers as autocast would run them: the convolution in bf16."""
    for layer in layers:
        planar = layer(planar)
    return planar


def sgd_steps(native_on: bool, steps: int = 3, stage=None):
    """The losses of `steps` SGD steps of the demo CNN under bf16 autocast, the
    parameters after the first, and the kernel paths taken.

    SGD, because Adam divides each step by the gradient's running scale: a
    weight whose gradient is near zero then moves by a whole learning rate on
    a rounding-level difference. Parameters are compared after one step: from
    the second on, the later layers' bf16 roundings turn any float32-level
    difference (another thread count does it too) into bf16-level ones.
    """
    model = demo_cnn()
    spectra, tabular, labels = demo_batch()
    model.fit_scaling(spectra.numpy(), tabular.numpy())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    losses, first, paths = [], None, KernelPaths()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECTRAGRID_NATIVE", "1" if native_on else "0")
        if stage is not None:
            patch.setattr(first_stage, "float32_stage", stage)
        torch.manual_seed(2)  # the same dropout masks in every run
        with paths.recording():
            for _ in range(steps):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    logits = model(spectra, tabular)
                loss = nn.functional.cross_entropy(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                if first is None:
                    first = torch.cat([p.detach().flatten() for p in model.parameters()])
    return torch.tensor(losses, dtype=torch.float64), first, paths.describe()


def test_training_takes_the_same_numbers_with_and_without_the_kernels(kernel):
    ours_loss, ours_weights, ours_paths = sgd_steps(native_on=True)
    theirs_loss, theirs_weights, theirs_paths = sgd_steps(native_on=False)
    assert ours_paths == {"first_stage": "c kernel", "pool_relu": "c kernel"}
    assert theirs_paths == {"first_stage": "torch layers", "pool_relu": "torch layers"}
    # the losses within float32 rounding, the stepped weights within a few parts in 10^5
    # (the later layers round a few values the other way in bf16)
    torch.testing.assert_close(ours_loss, theirs_loss, rtol=2e-6, atol=0)
    torch.testing.assert_close(ours_weights, theirs_weights, rtol=1e-5, atol=2e-6)
    # the tolerances tell the numerics apart: a bf16 first stage misses them by far
    bf16_loss, bf16_weights, _ = sgd_steps(native_on=False, stage=bf16_first_stage)
    assert not torch.allclose(ours_loss, bf16_loss, rtol=2e-6, atol=0)
    gap = (ours_weights - theirs_weights).abs().max()
    assert (ours_weights - bf16_weights).abs().max() > 10 * gap


def test_kernel_and_float32_layers_differ_by_rare_bf16_roundings(kernel):
    conv, pool = PlanarConv1d(3, 16, 7, padding=3), PlanarMaxPool1d(4)
    x = torch.rand(64, 3, 446) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = first_stage.first_stage(conv, pool, x).detach()
        theirs = first_stage.float32_stage([conv, pool, nn.ReLU()], x.unsqueeze(2))
        bf16 = bf16_first_stage([conv, pool, nn.ReLU()], x.unsqueeze(2))
    assert ours.dtype == theirs.dtype == torch.bfloat16
    differ = ours.float() != theirs.float()
    # a float32 result within rounding of a bf16 tie rounds either way: a few in 10^5
    assert differ.float().mean() < 1e-3
    ulp = ours.float().abs() * 2.0**-7
    assert ((ours.float() - theirs.float()).abs() <= ulp).all()
    assert (bf16.float() != ours.float()).float().mean() > 0.1


def test_evaluation_runs_a_first_stage_of_the_kernels_form_in_float32():
    """As training does, kernel or not: a model is validated with the numerics it trains with."""
    model = demo_cnn().eval()
    spectra, tabular, _ = demo_batch()
    model.fit_scaling(spectra.numpy(), tabular.numpy())
    seen = []
    model.trunk[3].register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(spectra, tabular)
        scaled = model.spectra_scale(spectra).unsqueeze(2)
    with torch.no_grad():
        expected = model.trunk[2](model.trunk[1](model.trunk[0](scaled)))
    assert seen[0].dtype == torch.bfloat16
    assert torch.equal(
        seen[0], expected.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    )


def test_ties_and_nan_follow_torch(kernel):
    conv, pool = PlanarConv1d(1, 16, 3, padding=1), PlanarMaxPool1d(2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(0.5)  # every window is a tie
    x = torch.randn(2, 1, 12)
    out = first_stage.first_stage(conv, pool, x)
    out.sum().backward()
    # each pooled output took its window's first position: one gradient per output
    assert torch.equal(out.detach(), torch.full_like(out, 0.5))
    assert float(conv.bias.grad.sum()) == pytest.approx(2 * 6 * 16)
    x[0, 0, 5] = float("nan")
    with torch.no_grad():
        conv.weight.fill_(1.0)
    out = first_stage.first_stage(conv, pool, x)
    reference = torch.relu(
        nn.functional.max_pool1d(nn.functional.conv1d(x, conv.weight, conv.bias, padding=1), 2)
    )
    assert torch.equal(out.detach().squeeze(2).isnan(), reference.isnan())
    assert out.detach().isnan().any()


def test_which_stages_are_fused():
    cnn = build_model("cnn", {"widths": [16, 32, 64]}, 3, 446, 0, 2)
    assert first_stage.fusable(list(cnn.trunk))
    narrow = build_model("cnn", {"widths": [8, 16, 16]}, 3, 446, 0, 2)
    assert not first_stage.fusable(list(narrow.trunk))  # 8 output channels: not a 16-block
    with_norm = PlanarSequential(PlanarConv1d(3, 16, 3, padding=1), PlanarBatchNorm1d(16))
    assert not first_stage.fusable(list(with_norm))
    overlapping = PlanarSequential(
        PlanarConv1d(3, 16, 3, padding=1), PlanarMaxPool1d(3, stride=2), nn.ReLU()
    )
    assert not first_stage.fusable(list(overlapping))
    even_kernel = PlanarSequential(PlanarConv1d(3, 16, 4, padding=2), PlanarMaxPool1d(2), nn.ReLU())
    assert not first_stage.fusable(list(even_kernel))


def test_evaluation_export_and_input_gradients_take_the_layers(kernel, monkeypatch):
    conv = PlanarConv1d(3, 16, 7, padding=3)
    x = torch.randn(4, 3, 64)
    assert first_stage.applies(conv, x)
    with torch.no_grad():
        assert not first_stage.applies(conv, x)
    conv.eval()
    assert not first_stage.applies(conv, x)
    conv.train()
    assert not first_stage.applies(conv, x.clone().requires_grad_())
    assert not first_stage.applies(conv, x.double())
    with torch.autocast("cpu", dtype=torch.float16):
        assert not first_stage.applies(conv, x)
    monkeypatch.setenv("SPECTRAGRID_NATIVE", "0")
    assert not first_stage.applies(conv, x)


def test_the_library_is_built_once_and_reused(kernel, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAGRID_CACHE", str(tmp_path))
    build.load.cache_clear()
    assert build.load("first_stage") is not None
    built = list((tmp_path / "native").iterdir())
    assert len(built) == 1 and built[0].name.startswith("first_stage-")
    stamp = built[0].stat().st_mtime_ns
    build.load.cache_clear()
    assert build.load("first_stage") is not None
    assert [p.stat().st_mtime_ns for p in (tmp_path / "native").iterdir()] == [stamp]


@pytest.mark.parametrize("compiler", ["/nonexistent/cc", "false"])
def test_without_a_working_compiler_training_falls_back_with_one_warning(
    compiler, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPECTRAGRID_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", compiler)
    build.load.cache_clear()
    trunk = stage(3, 16, 7, 4)
    x, grad = torch.randn(4, 3, 64), torch.randn(4, 16 * 16)
    with pytest.warns(RuntimeWarning, match="PyTorch's operators are used instead"):
        ours, our_grads = run(trunk, x, grad, kernel=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not on every step
        run(trunk, x, grad, kernel=True)
    theirs, their_grads = run(trunk, x, grad, kernel=False)
    assert torch.equal(ours, theirs)
    for name, value in their_grads.items():
        assert torch.equal(our_grads[name], value), name
    # a failed build leaves nothing behind that a later load could take for a library
    assert not any(p.suffix == ".so" for p in tmp_path.rglob("*"))


def pool_pair(pool: int) -> PlanarSequential:
    return PlanarSequential(PlanarMaxPool1d(pool), nn.ReLU(inplace=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("channels", "pool", "length"), [(32, 4, 111), (20, 2, 9), (7, 3, 3), (16, 4, 11)]
)
def test_pool_relu_is_exactly_torchs(kernel, dtype, channels, pool, length):
    """20 and 7 channels take the kernel's per-channel tail; 111, 9 and 11 points leave a
    remainder past the last window, which gets no gradient (11 // 4 = 2 windows, so the
    window size cannot be told from the lengths)."""
    x = torch.randn(5, channels, length).to(dtype)
    x[0, 0, :pool] = 0.25  # a tie: the first position wins
    grad = torch.randn(5, channels * (length // pool)).to(dtype)

    def once(kernel_on: bool):
        inp = x.clone().requires_grad_()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SPECTRAGRID_NATIVE", "1" if kernel_on else "0")
            out = pool_pair(pool)(inp)
        out.backward(grad)
        return out.detach(), inp.grad

    ours, our_grad = once(True)
    theirs, their_grad = once(False)
    assert ours.dtype == dtype
    assert torch.equal(ours, theirs)
    assert torch.equal(our_grad, their_grad)
    assert our_grad[..., (length // pool) * pool :].abs().sum() == 0


def test_pool_relu_propagates_nan_like_torch(kernel):
    x = torch.randn(2, 16, 1, 8).contiguous(memory_format=torch.channels_last)
    x[1, 3, 0, 5] = float("nan")
    ours = pool_relu.pool_relu(PlanarMaxPool1d(2), x)
    theirs = torch.relu(nn.functional.max_pool2d(x, (1, 2)))
    assert torch.equal(ours.isnan(), theirs.isnan()) and ours.isnan().sum() == 1
    torch.testing.assert_close(ours.nan_to_num(), theirs.nan_to_num(), rtol=0, atol=0)


def test_pool_relu_steps_aside_outside_training(kernel):
    pool = PlanarMaxPool1d(2)
    x = torch.randn(2, 16, 1, 8).contiguous(memory_format=torch.channels_last)
    assert pool_relu.applies(pool, x)
    assert not pool_relu.applies(pool, x.contiguous())  # not channels-last
    assert not pool_relu.applies(pool, x.double())
    assert not pool_relu.applies(pool, x[..., :1])  # shorter than a window
    with torch.no_grad():
        assert not pool_relu.applies(pool, x)
    pool.eval()
    assert not pool_relu.applies(pool, x)
    layers = [PlanarMaxPool1d(2), nn.ReLU(), PlanarMaxPool1d(3, stride=1), nn.ReLU()]
    assert pool_relu.fusable(layers, 0) and not pool_relu.fusable(layers, 2)
    assert not pool_relu.fusable(layers, 1) and not pool_relu.fusable(layers, 3)


def test_a_vgg_trains_the_same_with_and_without_the_kernels(kernel):
    model = build_model(
        "vgg11", {"width": 0.25, "batch_norm": True, "dropout": 0.0}, 3, 64, 2, 3
    )  # 16 channels first, then batch norm between conv and pool: only pool -> ReLU fuses
    x, tabular = torch.randn(6, 3, 64), torch.randn(6, 2)
    fused = []

    def once(kernel_on: bool):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SPECTRAGRID_NATIVE", "1" if kernel_on else "0")
            real = pool_relu.pool_relu
            patch.setattr(pool_relu, "pool_relu", lambda *a: fused.append(a) or real(*a))
            model.zero_grad(set_to_none=True)
            logits = model(x, tabular)
            logits.sum().backward()
        return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    ours, our_grads = once(True)
    assert len(fused) == 5  # one pool -> ReLU per stage
    theirs, their_grads = once(False)
    assert len(fused) == 5
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    for name, value in their_grads.items():
        torch.testing.assert_close(our_grads[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_kernel_paths_note_training_calls_only_and_survive_a_save():
    """What a model card reports: per kernel, the path its training calls took."""
    narrow = build_model("cnn", {"widths": [8, 16], "kernel": 3, "pool": 2}, 3, 32, 0, 2)
    x, tabular = torch.rand(4, 3, 32), torch.zeros(4, 0)
    paths = KernelPaths()
    with paths.recording():
        narrow.eval()
        narrow(x, tabular)  # evaluation takes no kernel and notes nothing
        assert paths.describe() == {"first_stage": "not applicable", "pool_relu": "not applicable"}
        narrow.train()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SPECTRAGRID_NATIVE", "0")
            narrow(x, tabular).sum().backward()
    narrow(x, tabular)  # outside the recording: not noted
    # 8 output channels are no first stage of the kernel's form
    assert paths.describe() == {"first_stage": "not applicable", "pool_relu": "torch layers"}
    restored = KernelPaths()
    restored.load_state_dict(paths.state_dict())
    assert restored.describe() == paths.describe()


def test_a_run_that_took_both_paths_says_so(kernel):
    model = demo_cnn()
    spectra, tabular, _ = demo_batch()
    paths = KernelPaths()
    with paths.recording():
        for native_on in ("1", "0"):
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("SPECTRAGRID_NATIVE", native_on)
                model(spectra, tabular).sum().backward()
    both = "c kernel and torch layers"
    assert paths.describe() == {"first_stage": both, "pool_relu": both}
