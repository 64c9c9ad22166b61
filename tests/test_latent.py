"""HoloGAN and RenderNet: geometry of the rigid transform, shapes, latent routing, training
steps, checkpoints, voxelization."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.errors import NsvError
from engine.latent.hologan import (
    Discriminator,
    Generator,
    HoloGANConfig,
    rigid_transform,
    sample_latents,
)

TINY = HoloGANConfig(const=16, c3d=[8, 8], c3d_post=[8, 4], proj=32, c2d=[16, 8],
                     d_channels=[8, 16, 16, 32])  # fmt: skip


def test_rigid_transform_quarter_turns_are_permutations():
    v = torch.randn(2, 3, 8, 8, 8)
    z = torch.zeros(2)
    quarter = torch.full((2,), math.pi / 2)
    torch.testing.assert_close(rigid_transform(v, z, z), v, atol=1e-5, rtol=0)
    # Azimuth turns about the vertical (H) axis: a rot90 in the (D, W) plane.
    torch.testing.assert_close(
        rigid_transform(v, quarter, z), torch.rot90(v, 1, (2, 4)), atol=1e-5, rtol=0
    )
    # Elevation tips about the horizontal (W) axis: a rot90 in the (D, H) plane.
    torch.testing.assert_close(
        rigid_transform(v, z, quarter), torch.rot90(v, 3, (2, 3)), atol=1e-5, rtol=0
    )
    # Scale 2 magnifies: the centre voxel's value spreads, corners sample the middle.
    big = rigid_transform(v, z, z, torch.full((2,), 2.0))
    assert big.shape == v.shape and not torch.allclose(big, v)


def test_generator_shapes_and_projection_unit():
    G = Generator(TINY)
    z1, z2 = sample_latents(3, TINY)
    vol = G.volume(z1)
    assert vol.shape == (3, 8, 16, 16, 16)
    assert G.project.in_channels == 4 * 16  # depth folded into channels
    img = G(z1, z2, torch.rand(3), torch.rand(3))
    assert img.shape == (3, 3, 64, 64) and img.abs().max() <= 1
    logit, styles, z = Discriminator(TINY)(img)
    assert logit.shape == (3,) and len(styles) == 3 and z.shape == (3, TINY.z1 + TINY.z2)


def test_z2_never_reaches_the_3d_layers():
    torch.manual_seed(0)
    G = Generator(TINY)
    for m in G.modules():
        if hasattr(m, "affine"):
            torch.nn.init.normal_(m.affine.weight, 0, 0.5)
    seen = []
    hooks = [
        c.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone())) for c in G.post3d
    ]
    z1, z2 = sample_latents(2, TINY)
    _, z2b = sample_latents(2, TINY)
    az, el = torch.rand(2), torch.rand(2)
    a = G(z1, z2, az, el)
    b = G(z1, z2b, az, el)
    for h in hooks:
        h.remove()
    n = len(G.post3d)
    for x, y in zip(seen[:n], seen[n:], strict=True):
        torch.testing.assert_close(x, y)  # 3D activations identical when only z2 changes
    assert (a - b).abs().mean() > 1e-3  # ... while the image does change
    # And z1 does reach them.
    G.zero_grad()
    z1g = z1.clone().requires_grad_(True)
    G.render(G.volume(z1g), z2, az, el).sum().backward()
    assert z1g.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    from engine.latent.objects import write_object_dataset

    out = tmp_path_factory.mktemp("objects")
    write_object_dataset(out, 24, 64, progress=False)
    return out


def test_object_dataset_has_real_variation(objects):
    from engine.latent.train import load_object_dataset

    d = load_object_dataset(objects)
    imgs = d["images"].float()
    assert imgs.shape == (24, 64, 64, 3)
    assert d["azimuth"].min() >= 0 and d["azimuth"].max() < 360
    # Distinct chairs: the foreground differs from image to image, and covers a real area.
    from engine.latent.render import silhouette

    masks = silhouette(imgs.permute(0, 3, 1, 2) / 255)
    assert 0.05 < masks.float().mean() < 0.6
    assert (imgs[0] - imgs[1]).abs().mean() > 5


def test_every_furniture_category_has_its_own_silhouette():
    """Each category renders inside the frame, and categories differ in outline (the shape
    variety HoloGAN's z1 has to learn), not only in colour."""
    from engine.latent.objects import (
        BACKGROUND,
        CATEGORIES,
        object_camera,
        random_object,
    )
    from engine.latent.render import silhouette
    from engine.synthetic.render import MeshRenderer

    rng = np.random.default_rng(3)
    masks = {}
    renderer = None
    for cat in CATEGORIES:
        objs, params = random_object(rng, (cat,), plain=1.0)
        assert params["category"] == cat
        assert all(o.material == objs[0].material for o in objs)  # plain: one colour
        bounds = np.concatenate([o.mesh.bounds for o in objs])
        assert np.linalg.norm(bounds, axis=1).max() <= 1.0 + 1e-6  # in the unit sphere
        if renderer is None:
            renderer = MeshRenderer(objs)
        else:
            renderer.set_objects(objs)
        img = renderer.render(object_camera(30, 20, 64), 2, BACKGROUND)
        m = silhouette(torch.from_numpy(img).permute(2, 0, 1)[None].float())[0]
        assert 0.02 < m.float().mean() < 0.7, cat
        masks[cat] = m
    cats = list(masks)
    for i, a in enumerate(cats):
        for b in cats[i + 1 :]:
            iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
            assert iou < 0.85, (a, b)


def test_hologan_training_steps_change_weights_and_resume(objects, tmp_path):
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer, load_generator

    cfg = HoloGANTrainConfig(steps=2, batch=4, checkpoint_every=2, sample_every=2)
    tr = HoloGANTrainer(objects, tmp_path / "run", cfg, TINY)
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    tr.run(progress=False)
    changed = [k for k, v in tr.G.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > len(before) // 2
    assert (tmp_path / "run" / "samples" / "step_000002.png").is_file()
    G = load_generator(tmp_path / "run")
    assert G.cfg == TINY
    tr2 = HoloGANTrainer(objects, tmp_path / "run", HoloGANTrainConfig(steps=3, batch=4), TINY)
    assert tr2.load_checkpoint() and tr2.step == 2
    torch.testing.assert_close(tr2.G.state_dict()["const"], tr.G.state_dict()["const"])


def test_checkpoints_of_another_architecture_are_rejected(objects, tmp_path):
    from engine.latent.train import (
        HoloGANTrainConfig,
        HoloGANTrainer,
        load_generator,
        save_generator,
    )

    save_generator(Generator(TINY), tmp_path / "g", {})
    meta = json.loads((tmp_path / "g" / "hologan.json").read_text())
    meta["model"]["proj"] = 48
    (tmp_path / "g" / "hologan.json").write_text(json.dumps(meta))
    with pytest.raises(NsvError, match="another architecture"):
        load_generator(tmp_path / "g")
    tr = HoloGANTrainer(objects, tmp_path / "run", HoloGANTrainConfig(steps=1, batch=2), TINY)
    tr.run(progress=False)
    other = HoloGANConfig(**{**TINY.__dict__, "proj": 48})
    with pytest.raises(NsvError, match="cannot resume"):
        HoloGANTrainer(objects, tmp_path / "run", HoloGANTrainConfig(), other).load_checkpoint()


def test_voxelize_meshes_and_bad_input(tmp_path):
    import trimesh

    from engine.latent.voxels import load_mesh, voxelize

    box = trimesh.creation.box(extents=(1.0, 0.5, 0.25))
    v = voxelize(box, 32)
    assert v.shape == (32, 32, 32)
    # Solid (filled) box; its longest side runs along W (x), its shortest along D (depth).
    occ = v > 0
    ext = [np.ptp(np.nonzero(occ)[i]) + 1 for i in range(3)]
    assert ext[2] > ext[1] > ext[0]
    assert occ[16, 16, 16]
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2])  # a hole: not watertight
    assert not open_box.is_watertight and voxelize(open_box, 16).sum() > 0
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(NsvError, match="no triangles"):
        load_mesh(tmp_path / "empty.obj")
    (tmp_path / "junk.stl").write_bytes(b"\x00" * 10)
    with pytest.raises(NsvError):
        load_mesh(tmp_path / "junk.stl")


def test_voxel_grid_turns_like_the_camera():
    """The rigid transform of the canonical grid must match what object_camera sees."""
    import torch.nn.functional as F
    import trimesh

    from engine.latent.objects import object_camera, random_chair
    from engine.latent.rendernet import AZIMUTH_SIGN, ELEVATION_SIGN
    from engine.latent.styles import GeometryBuffer
    from engine.latent.voxels import normalise, voxelize

    rng = np.random.default_rng(5)
    gbuf = GeometryBuffer()
    scores = {}
    for _ in range(2):
        objs, _ = random_chair(rng)
        mesh = normalise(trimesh.util.concatenate([o.mesh for o in objs]))
        vox = torch.from_numpy(voxelize(mesh, 32))[None, None]
        gbuf.set_mesh(mesh)
        for az, el in ((60, 20), (200, 35), (300, 10)):
            _, depth = gbuf.render(object_camera(az, el, 64), 1)
            cov = torch.from_numpy(depth > 0)
            for sa in (1, -1):
                for se in (1, -1):
                    r = rigid_transform(vox, torch.tensor([sa * math.radians(az)]),
                                        torch.tensor([se * math.radians(el)]))  # fmt: skip
                    sil = F.interpolate(r.amax(2), size=(64, 64))[0, 0] > 0.3
                    scores.setdefault((sa, se), []).append(
                        float((sil & cov).sum() / (sil | cov).sum())
                    )
    best = max(scores, key=lambda k: np.mean(scores[k]))
    assert best == (AZIMUTH_SIGN, ELEVATION_SIGN)
    assert np.mean(scores[best]) > 0.5


def test_rendernet_shapes_training_and_styles(tmp_path):
    from engine.latent.rendernet import (
        RenderNet,
        RenderNetConfig,
        RenderNetTrainConfig,
        RenderNetTrainer,
        evaluate_rendernet,
        load_rendernet,
        load_rendernet_dataset,
        write_rendernet_dataset,
    )
    from engine.latent.styles import STYLES

    write_rendernet_dataset(tmp_path / "data", 4, 2, 64, 32, progress=False)
    data = load_rendernet_dataset(tmp_path / "data")
    assert data["images"].shape == (8, len(STYLES), 64, 64, 3)
    m = RenderNet(RenderNetConfig()).eval()
    out = m(torch.rand(2, 1, 32, 32, 32), torch.rand(2), torch.rand(2))
    assert out.shape == (2, len(STYLES), 3, 64, 64) and 0 <= out.min() and out.max() <= 1
    tr = RenderNetTrainer(
        tmp_path / "data", tmp_path / "rn", RenderNetTrainConfig(steps=3, batch=2)
    )
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.run(progress=False)
    assert sum(not torch.equal(v, before[k]) for k, v in tr.model.state_dict().items()) > 5
    model = load_rendernet(tmp_path / "rn")
    metrics = evaluate_rendernet(model, data)
    assert set(metrics) == set(STYLES) and all(np.isfinite(v["psnr"]) for v in metrics.values())


def test_pose_regressor_and_disentanglement_metrics_run(objects):
    from engine.latent.evaluate import disentanglement, pose_control, train_pose_regressor
    from engine.latent.render import LatentRenderer
    from engine.latent.train import load_object_dataset

    r = LatentRenderer(Generator(TINY))
    d = disentanglement(r, pairs=6, batch=3)
    assert 0 <= d["iou_z2_changed"] <= 1 and d["pairs"] == 6
    reg, held = train_pose_regressor(load_object_dataset(objects), steps=3, batch=4, progress=False)
    pc = pose_control(r, reg, latents=2, azimuths=4)
    assert pc["images"] == 8 and 0 <= pc["median_deg"] <= 180
    assert held["images"] == 3 and 0 <= held["azimuth_median_deg"] <= 180


def test_kid_separates_distributions_and_sample_quality_runs(objects):
    from engine.latent.evaluate import kid, sample_quality, train_pose_regressor
    from engine.latent.render import LatentRenderer
    from engine.latent.train import load_object_dataset

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    same, _ = kid(a, b, subsets=10, size=200)
    shifted, _ = kid(a, b + 0.5, subsets=10, size=200)
    assert abs(same) < 0.02 and shifted > 10 * max(abs(same), 1e-3)
    data = load_object_dataset(objects)
    reg, _ = train_pose_regressor(data, steps=2, batch=4, progress=False)
    q = sample_quality(LatentRenderer(Generator(TINY)), reg, data, data)
    assert q["images"] == 24 and np.isfinite(q["kid_x1000"]) and "kid_floor_x1000" in q


def test_model_card_figures(tmp_path):
    import imageio.v3 as iio

    from engine.latent.evaluate import hologan_figures
    from engine.latent.render import LatentRenderer

    res = TINY.res
    paths = hologan_figures(LatentRenderer(Generator(TINY)), tmp_path, offset_deg=90, sign=-1)
    shapes = {p.name: iio.imread(p).shape for p in paths}
    assert shapes == {
        "samples.png": (8 * res, 8 * res, 3),
        "turntable.png": (4 * res, 12 * res, 3),
        "z1_rows_z2_columns.png": (6 * res, 6 * res, 3),
    }
    turntable = iio.imread(tmp_path / "turntable.png")[:res].reshape(res, 12, res, 3)
    assert not np.array_equal(turntable[:, 0], turntable[:, 3])  # the views differ


def test_cli_rendernet_and_bench_latent(tmp_path):
    from engine.latent.rendernet import RenderNet, RenderNetConfig, save_rendernet
    from tests.helpers import nsv

    torch.manual_seed(0)
    save_rendernet(RenderNet(RenderNetConfig()), tmp_path / "rn", {"steps": 0})
    out = tmp_path / "pair.png"
    from tests.conftest import ROOT

    res = nsv("rendernet", str(ROOT / "assets" / "scenes" / "bunny.obj"), "--model", str(tmp_path / "rn"),
              "--out", str(out), "--size", "96", "--style", "toon")  # fmt: skip
    assert res.returncode == 0, res.stderr
    import imageio.v3 as iio

    img = iio.imread(out)
    assert img.shape == (96, 192, 3)
    assert (img[:, 96:] < 200).any(-1).mean() > 0.05  # the conventional toon bunny
    res = nsv(
        "rendernet",
        str(tmp_path / "missing.obj"),
        "--model",
        str(tmp_path / "rn"),
        "--out",
        str(out),
    )
    assert res.returncode == 1 and "no such file" in res.stderr
    res = nsv("bench", "latent", "--repeats", "1")
    assert res.returncode == 0, res.stderr
    assert "HoloGAN" in res.stdout and "RenderNet" in res.stdout


def test_shape_seeking_term_reaches_only_the_3d_generator(objects, tmp_path):
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    tr = HoloGANTrainer(objects, tmp_path / "run", HoloGANTrainConfig(lambda_shape=1.0), TINY)
    z1, _ = sample_latents(4, TINY)
    loss = tr.shape_seeking_loss(tr.G.volume(z1), z1, torch.Generator().manual_seed(0))
    assert loss > 0
    loss.backward()
    assert tr.G.const.grad is not None and tr.G.const.grad.abs().sum() > 0
    assert all(p.grad is None for p in tr.G.ada2d.parameters())  # the 2D renderer is untouched


def test_outline_term_is_zero_for_texture_free_outlines_and_trains_the_2d_renderer(
    objects, tmp_path
):
    from engine.latent.render import silhouette, soft_silhouette
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    tr = HoloGANTrainer(objects, tmp_path / "run", HoloGANTrainConfig(lambda_outline=1.0), TINY)
    z1, z2 = sample_latents(4, TINY)
    az, el = torch.zeros(4), torch.full((4,), 0.3)
    feats = tr.G.project_view(tr.G.volume(z1), az, el)
    fake = tr.G.decode(feats, z2)
    assert torch.allclose(fake, tr.G(z1, z2, az, el), atol=1e-6)  # same image as render()
    loss = tr.outline_loss(feats, fake, torch.Generator().manual_seed(0), n=4)
    assert loss > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tr.G.ada2d.parameters())
    # The soft silhouette agrees with the evaluation's hard one away from the threshold.
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    hard = silhouette((img + 1) / 2)
    soft = soft_silhouette(img)
    assert ((soft > 0.5) == hard).float().mean() > 0.99
    # Two decodes of one outline with different textures: a mask that ignores colour -> 0.
    same = torch.where(hard[:, None], torch.tensor([-1.0, 1.0, -1.0]).reshape(1, 3, 1, 1), img)
    other = torch.where(hard[:, None], torch.tensor([1.0, -1.0, -1.0]).reshape(1, 3, 1, 1), img)
    assert (soft_silhouette(same) - soft_silhouette(other)).abs().max() < 1e-3


def test_z1_volume_warm_starts_unchanged_and_lets_z1_write_the_volume():
    from dataclasses import replace

    from engine.latent.hologan import Generator

    torch.manual_seed(0)
    old = Generator(TINY).eval()
    new = Generator(replace(TINY, z1_volume=True)).eval()
    missing, unexpected = new.load_state_dict(old.state_dict(), strict=False)
    assert missing == ["z1_to_volume.weight", "z1_to_volume.bias"] and not unexpected
    z1, z2 = sample_latents(3, TINY)
    az, el = torch.zeros(3), torch.full((3,), 0.3)
    with torch.no_grad():
        assert torch.allclose(new(z1, z2, az, el), old(z1, z2, az, el), atol=1e-6)
        new.z1_to_volume.weight.normal_(0, 0.1)
        x0 = new.const + new.z1_to_volume(z1).reshape(3, *new.const.shape[1:])
    # The 4^3 volume now differs per shape latent before any style is applied.
    assert (x0[0] - x0[1]).abs().mean() > 0.01


def test_diversity_term_pushes_equal_outlines_apart_and_spares_different_ones(objects, tmp_path):
    from engine.latent.objects import BACKGROUND
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    cfg = HoloGANTrainConfig(lambda_diversity=1.0, diversity_iou=0.7, z1_volume=True)
    tr = HoloGANTrainer(objects, tmp_path / "run", cfg)
    assert tr.G.cfg.z1_volume  # the train option builds the generator with the layer
    z1, z2 = sample_latents(4, tr.model_cfg)
    az, el = torch.zeros(4), torch.full((4,), 0.3)
    fake = tr.G(z1, z2, az, el)
    g = torch.Generator().manual_seed(0)
    # A fresh z1_volume generator ignores z1 in the volume and has barely styled it: other
    # shape latents give nearly the same outlines, which the hinge penalises.
    loss = tr.diversity_loss(fake, z2, az, el, g, n=4)
    assert loss > 0
    loss.backward()
    assert tr.G.z1_to_volume.weight.grad.abs().sum() > 0  # it reaches the new layer
    # Outlines that already differ (an empty image against the samples) cost nothing.
    empty = (torch.tensor(BACKGROUND).reshape(1, 3, 1, 1) * 2 - 1).expand_as(fake)
    assert float(tr.diversity_loss(empty, z2, az, el, g, n=4).detach()) == 0.0


def test_shape_code_and_discriminator_warmup(objects, tmp_path):
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    cfg = HoloGANTrainConfig(steps=2, batch=4, lambda_shape_code=1.0, d_warmup=1,
                             checkpoint_every=0, sample_every=0)  # fmt: skip
    tr = HoloGANTrainer(objects, tmp_path / "run", cfg, TINY)
    g0 = {k: v.clone() for k, v in tr.G.state_dict().items()}
    q0 = {k: v.clone() for k, v in tr.Q.state_dict().items()}
    d0 = tr.D.logit.bias.detach().clone()
    tr.train_step()  # step 0 < d_warmup: the discriminator alone
    assert not torch.equal(tr.D.logit.bias, d0)
    assert all(torch.equal(v, tr.G.state_dict()[k]) for k, v in g0.items())
    assert all(torch.equal(v, tr.Q.state_dict()[k]) for k, v in q0.items())
    tr.step = 1
    losses = tr.train_step()
    assert all(np.isfinite(v) for v in losses.values())
    assert not torch.equal(tr.Q.out.weight, q0["out.weight"])  # the encoder trains
    # The code reaches the 3D generator through the silhouette alone.
    tr.opt_g.zero_grad()
    z1, z2 = sample_latents(4, TINY)
    fake = tr.G(z1, z2, torch.zeros(4), torch.full((4,), 0.3))
    from engine.latent.render import soft_silhouette

    code = z1[:, : cfg.shape_code_dims]
    torch.nn.functional.mse_loss(tr.Q(soft_silhouette(fake)[:, None]), code).backward()
    assert tr.G.const.grad.abs().sum() > 0
    assert "Q" in tr.modules and "q_" in tr.optimizers  # checkpointed and resumed with the rest


def test_minibatch_std_sees_batches_of_one_image():
    from dataclasses import replace

    from engine.latent.hologan import Discriminator, minibatch_std

    x = torch.randn(8, 4, 3, 3)
    same = x[:1].expand(8, -1, -1, -1)
    assert minibatch_std(same, 4).abs().max() < 1e-3  # identical images: no spread
    assert minibatch_std(x, 4).min() > 0.5  # random ones: about unit spread
    # Groups are every (B / group)-th image, as in StyleGAN: copies two apart form a group.
    pairs = torch.cat([x[:2]] * 4)
    assert minibatch_std(pairs, 4).abs().max() < 1e-3
    assert minibatch_std(x[:6], 4).shape == (6, 1, 3, 3)  # a batch that is not a multiple
    D = Discriminator(replace(TINY, d_minibatch_std=4))
    img = torch.rand(4, 3, TINY.res, TINY.res) * 2 - 1
    # The same image scores differently beside other images than beside copies of itself.
    alone = D(img[:1].expand(4, -1, -1, -1))[0][0]
    assert not torch.allclose(alone, D(img)[0][0])


def test_pose_conditional_discriminator_judges_the_pose_too(objects, tmp_path):
    from engine.latent.hologan import Discriminator, pose_features
    from engine.latent.train import HoloGANTrainConfig, HoloGANTrainer

    D = Discriminator(TINY, pose_conditional=True)
    img = torch.rand(2, 3, TINY.res, TINY.res) * 2 - 1
    a = pose_features(torch.tensor([0.0, 0.0]), torch.tensor([0.3, 0.3]))
    b = pose_features(torch.tensor([1.5, 3.0]), torch.tensor([0.3, 0.6]))
    assert a.shape == (2, 9)
    assert not torch.allclose(D(img, a)[0], D(img, b)[0])  # same images, other poses
    cfg = HoloGANTrainConfig(steps=2, batch=4, pose_conditional=True, checkpoint_every=0,
                             sample_every=0)  # fmt: skip
    tr = HoloGANTrainer(objects, tmp_path / "run", cfg, TINY)
    assert tr.real_pose.shape == (len(tr.images), 9)
    losses = tr.train_step()
    assert all(np.isfinite(v) for v in losses.values())
    assert tr.D.pose.weight_orig.grad.abs().sum() > 0  # the pose projection trains


def test_cli_furniture_data_and_warm_started_hologan(tmp_path):
    from engine.assets import HOLOGAN
    from tests.helpers import assert_one_line_error, nsv

    data = tmp_path / "objects"
    res = nsv("data", "objects", str(data), "--n", "6", "--categories", "stool,lamp",
              "--plain", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "stool, lamp" in res.stdout and (data / "preview.png").is_file()
    assert_one_line_error(
        nsv("data", "objects", str(tmp_path / "x"), "--categories", "chair,spaceship"),
        "spaceship",
    )
    if not (HOLOGAN / "hologan.safetensors").is_file():
        pytest.skip("no bundled HoloGAN to start from")
    out = tmp_path / "run"
    res = nsv("train-hologan", str(data), "--out", str(out), "--steps", "1", "--batch", "2",
              "--init", str(HOLOGAN), "--sample-every", "0", "--z1-volume")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "starting the generator from" in res.stdout
    from engine.latent.train import load_generator

    start, after = load_generator(HOLOGAN), load_generator(out)
    assert after.cfg.z1_volume  # with or without the layer in the bundle, the run has it
    # The warm start's totals add this run to the runs before it.
    before = start.summary.get("total_steps", start.summary["steps"])
    assert after.summary["total_steps"] == before + 1
    assert after.summary["warm_start"]["from"] == str(HOLOGAN)
    # Resumed with --ema 0: the exported generator is the trained one itself.
    res = nsv("train-hologan", str(data), "--out", str(out), "--steps", "2", "--batch", "2",
              "--sample-every", "0", "--z1-volume", "--resume", "--ema", "0")  # fmt: skip
    assert res.returncode == 0, res.stderr
    resumed = load_generator(out)
    assert resumed.summary["total_steps"] == before + 2  # resumed: still counted
    from safetensors.torch import load_file

    trained = {k[2:]: v for k, v in load_file(str(out / "checkpoint.safetensors")).items()
               if k.startswith("G.")}  # fmt: skip
    assert all(torch.equal(v, trained[k]) for k, v in resumed.state_dict().items())
    assert not torch.equal(trained["const"], after.state_dict()["const"])
    # One step moved the weights a little from the bundled ones, not from a fresh start.
    d = (after.state_dict()["const"] - start.state_dict()["const"]).abs().max()
    assert 0 < d < 0.05
